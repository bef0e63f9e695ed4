import Foundation
import XCTest
@testable import Converters
@testable import Shards

final class ManifestTests: XCTestCase {
    var dir = ""
    var ds = ""
    override func setUpWithError() throws {
        dir = makeTempDirectory()
        ds = dir + "/ds"
        let n = 90
        writeBytes(idxBytes(dims: [n, 4, 4], data: testBytes(n * 16, seed: 4)), dir + "/i.idx")
        writeBytes(idxBytes(dims: [n], data: testBytes(n, seed: 8, range: 3)), dir + "/l.idx")
        _ = try convert(try IDXInput(images: dir + "/i.idx", labels: dir + "/l.idx"), to: ds, blockBytes: 200, shardRecords: 30)
    }
    override func tearDown() { removeDirectory(dir) }

    var manifestPath: String { ds + "/manifest.json" }

    func editManifest(_ edit: (inout [String: Any]) -> Void) throws {
        var json = try JSONSerialization.jsonObject(with: Data(readBytes(manifestPath))) as! [String: Any]
        edit(&json)
        writeBytes(Array(try JSONSerialization.data(withJSONObject: json)), manifestPath)
    }

    func editFirstShard(_ edit: (inout [String: Any]) -> Void) throws {
        try editManifest { json in
            var splits = json["splits"] as! [String: Any]
            var train = splits["train"] as! [String: Any]
            var shards = train["shards"] as! [[String: Any]]
            edit(&shards[0])
            train["shards"] = shards
            splits["train"] = train
            json["splits"] = splits
        }
    }

    func testManifestRecordsEverythingTheBriefAsksFor() throws {
        let m = try DatasetManifest.load(directory: ds)
        XCTAssertEqual(m.formatVersion, 1)
        XCTAssertEqual(m.fileHash, "sha256")
        let train = m.splits["train"]!
        XCTAssertEqual(train.records, 90)
        XCTAssertEqual(train.shards.count, 3)
        XCTAssertEqual(train.writer.recordsPerBlock, 10)
        XCTAssertEqual(train.writer.level, 3)
        XCTAssertEqual(train.source.format, "idx")
        XCTAssertEqual(train.source.files.map(\.bytes), [16 + 90 * 16, 8 + 90])
        for s in train.shards {
            XCTAssertEqual(s.sha256, readBytes(ds + "/" + s.file).withUnsafeBytes { SHA256.hash($0) })
            XCTAssertEqual(s.bytes, readBytes(ds + "/" + s.file).count)
            XCTAssertEqual(s.blocks, 3)
        }
        XCTAssertEqual(train.fingerprint.count, 32)
    }

    func testVerifyPassesOnAPristineDataset() throws {
        let report = try DatasetVerifier.verify(directory: ds)
        XCTAssertTrue(report.isClean, "\(report.faults)")
        XCTAssertEqual(report.records, 90)
        XCTAssertEqual(report.blocks, 9)
        XCTAssertEqual(report.shards, 3)
    }

    func testManifestWhoseCountsDoNotAddUpIsInvalid() throws {
        try editManifest { json in
            var splits = json["splits"] as! [String: Any]
            var train = splits["train"] as! [String: Any]
            train["records"] = 91
            splits["train"] = train
            json["splits"] = splits
        }
        assertShardError(try ShardDataset(directory: ds), mentioning: "manifest.json") {
            if case .manifestInvalid = $0 { return true } else { return false }
        }
    }

    func testManifestWhoseHashIsEditedFailsItsFingerprint() throws {
        try editFirstShard { $0["sha256"] = String(repeating: "0", count: 64) }
        assertShardError(try ShardDataset(directory: ds), mentioning: "fingerprint") {
            if case .manifestInvalid = $0 { return true } else { return false }
        }
    }

    func testManifestThatDisagreesWithAShardIsAMismatch() throws {
        // Consistent manifest totals, but shard 0 claims another block count than its index.
        try editFirstShard { $0["blocks"] = 4 }
        try editManifest { json in
            var splits = json["splits"] as! [String: Any]
            var train = splits["train"] as! [String: Any]
            train["blocks"] = 10
            splits["train"] = train
            json["splits"] = splits
        }
        let dataset = try ShardDataset(directory: ds)
        assertShardError(try dataset.split("train"), mentioning: "train-00000-of-00003.zshard") {
            if case .manifestMismatch(_, "block count", "4", "3") = $0 { return true } else { return false }
        }
        let report = try DatasetVerifier.verify(directory: ds)
        XCTAssertEqual(report.faults.count, 1)
    }

    func testTruncatedShardIsReportedAsTruncatedAgainstTheManifest() throws {
        let shard = ds + "/train-00001-of-00003.zshard"
        let bytes = readBytes(shard)
        writeBytes(Array(bytes[0 ..< bytes.count - 10]), shard)
        assertShardError(try ShardDataset(directory: ds).split("train"), mentioning: "train-00001") {
            if case .truncated(_, bytes.count - 10, bytes.count, bytes.count - 10) = $0 { return true } else { return false }
        }
    }

    func testShardReplacedByAnotherValidShardFailsItsHash() throws {
        // Same size and structure, different bytes: only the whole-file hash can tell.
        let shard = ds + "/train-00002-of-00003.zshard"
        var bytes = readBytes(shard)
        // Flip an unused header flag bit and reseal the header CRC: every structural check passes.
        bytes[14] ^= 0x80
        let payloadSize = Int(bytes[4]) | Int(bytes[5]) << 8
        let crc = Array(bytes[8 ..< 8 + payloadSize - 4]).withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(8 + payloadSize - 4 ..< 8 + payloadSize, with: $0) }
        writeBytes(bytes, shard)
        XCTAssertNoThrow(try ShardDataset(directory: ds).split("train"), "structurally the shard is still valid")
        let report = try DatasetVerifier.verify(directory: ds)
        XCTAssertEqual(report.faults.count, 1)
        if case .fileHashMismatch(let file, _, _)? = report.faults.first { XCTAssertTrue(file.hasSuffix("train-00002-of-00003.zshard")) } else {
            XCTFail("expected a hash mismatch, got \(report.faults)")
        }
    }

    func testVerifyListsEveryCorruptBlockWithShardBlockAndOffset() throws {
        let shard = ds + "/train-00000-of-00003.zshard"
        let r = try ShardReader(path: shard)
        var bytes = readBytes(shard)
        for b in [0, 2] { bytes[r.blocks[b].offset + 6] ^= 0x01 }
        writeBytes(bytes, shard)
        let report = try DatasetVerifier.verify(directory: ds)
        let blockFaults = report.faults.compactMap { fault -> (Int, Int)? in
            if case let .blockChecksumMismatch(file, block, offset, _, _) = fault, file == shard { return (block, offset) }
            return nil
        }
        XCTAssertEqual(blockFaults.map(\.0), [0, 2])
        XCTAssertEqual(blockFaults.map(\.1), [r.blocks[0].offset, r.blocks[2].offset])
        XCTAssertTrue(report.faults.contains { if case .fileHashMismatch = $0 { return true } else { return false } })
        XCTAssertEqual(report.blocks, 7)
    }

    func testManifestNamingFilesOutsideTheFolderIsInvalid() throws {
        try editFirstShard { $0["file"] = "../escape.zshard" }
        assertShardError(try ShardDataset(directory: ds)) { if case .manifestInvalid = $0 { return true } else { return false } }
    }

    func testGarbageManifestIsInvalidAndMissingManifestIsMissing() throws {
        writeBytes(Array("{ not json".utf8), manifestPath)
        assertShardError(try ShardDataset(directory: ds)) { if case .manifestInvalid = $0 { return true } else { return false } }
        // Found by tools/fuzz.sh manifest (Foundation leaked its read buffer on an empty file).
        writeBytes([], manifestPath)
        assertShardError(try ShardDataset(directory: ds), mentioning: "manifest.json is not a valid manifest: it is empty") {
            if case .manifestInvalid = $0 { return true } else { return false }
        }
        try FileManager.default.removeItem(atPath: manifestPath)
        assertShardError(try ShardDataset(directory: ds)) { if case .manifestMissing = $0 { return true } else { return false } }
    }
}
