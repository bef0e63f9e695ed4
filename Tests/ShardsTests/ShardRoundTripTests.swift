import DatasetTestSupport
import XCTest
@testable import Shards

final class ShardRoundTripTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDirectory() }
    override func tearDown() { removeDirectory(dir) }

    let schema = imageSchema(4, 5, 3, classes: 7)  // 60 + 4 = 64-byte records

    /// Writes `count` records of `schema` to one shard and returns (path, raw records).
    func writeShard(count: Int, blockBytes: Int = 640, threads: Int = 1, level: Int = 3, name: String = "s.zshard") throws -> (String, [UInt8]) {
        let images = testBytes(count * 60, seed: 11, range: 16)
        let labels = (0..<count).map { Int32($0 % 7) }
        let raw = records(images: images, labels: labels, imageBytes: 60)
        let path = dir + "/" + name
        let writer = try ShardWriter(path: path, schema: schema, options: ShardWriterOptions(blockBytes: blockBytes, level: level, threads: threads))
        // Append in uneven pieces to exercise staging across block and batch boundaries.
        var offset = 0
        var piece = 1
        try raw.withUnsafeBytes { all in
            while offset < raw.count {
                let n = min(piece * 64, raw.count - offset)
                try writer.append(UnsafeRawBufferPointer(rebasing: all[offset ..< offset + n]))
                offset += n
                piece = piece % 7 + 1
            }
        }
        let summary = try writer.finish()
        XCTAssertEqual(summary.records, count)
        XCTAssertEqual(summary.bytes, readBytes(path).count)
        XCTAssertEqual(summary.sha256, readBytes(path).withUnsafeBytes { SHA256.hash($0) })
        return (path, raw)
    }

    func testShardRoundTripsRecordsInBlocksOfWholeRecords() throws {
        let (path, raw) = try writeShard(count: 105)
        let reader = try ShardReader(path: path)
        XCTAssertEqual(reader.schema, schema)
        XCTAssertEqual(reader.totalRecords, 105)
        XCTAssertEqual(reader.blocks.map(\.records), Array(repeating: 10, count: 10) + [5])
        XCTAssertEqual(reader.largestBlock, 640)
        XCTAssertEqual(reader.header.flags & ShardFormat.flagFixedStride, ShardFormat.flagFixedStride)
        let decoder = try reader.makeDecoder()
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 640)
        for b in 0..<reader.blocks.count {
            let n = try buffer.withUnsafeMutableBytes { try decoder.decode(block: b, into: $0) }
            out += buffer[0 ..< n * 64]
        }
        XCTAssertEqual(out, raw)
    }

    func testOutputIsIdenticalForAnyThreadCount() throws {
        let (one, _) = try writeShard(count: 333, threads: 1, name: "one.zshard")
        let (two, _) = try writeShard(count: 333, threads: 2, name: "two.zshard")
        let (five, _) = try writeShard(count: 333, threads: 5, name: "five.zshard")
        XCTAssertEqual(readBytes(one), readBytes(two))
        XCTAssertEqual(readBytes(one), readBytes(five))
    }

    func testBlockSmallerThanARecordStillHoldsOneRecord() throws {
        let (path, raw) = try writeShard(count: 3, blockBytes: 1)
        let reader = try ShardReader(path: path)
        XCTAssertEqual(reader.blocks.count, 3)
        let split = ShardSplit(name: "t", schema: schema, shards: [reader], fingerprint: "x")
        XCTAssertEqual(try decodeAll(split), raw)
    }

    func testDecodeIntoTooSmallBufferAndOutOfRangeBlockThrow() throws {
        let (path, _) = try writeShard(count: 20)
        let decoder = try ShardReader(path: path).makeDecoder()
        var small = [UInt8](repeating: 0, count: 100)
        assertShardError(try small.withUnsafeMutableBytes { try decoder.decode(block: 0, into: $0) }) {
            if case .destinationTooSmall(0, 640, 100) = $0 { return true } else { return false }
        }
        var big = [UInt8](repeating: 0, count: 1000)
        assertShardError(try big.withUnsafeMutableBytes { try decoder.decode(block: 2, into: $0) }) {
            if case .blockOutOfRange(2, 2) = $0 { return true } else { return false }
        }
    }

    func testSplitNumbersBlocksGloballyAcrossShards() throws {
        let (a, rawA) = try writeShard(count: 25, name: "a.zshard")   // 3 blocks
        let (b, rawB) = try writeShard(count: 12, name: "b.zshard")   // 2 blocks
        let split = ShardSplit(name: "t", schema: schema, shards: [try ShardReader(path: a), try ShardReader(path: b)], fingerprint: "f")
        XCTAssertEqual(split.blockCount, 5)
        XCTAssertEqual(split.recordCount, 37)
        XCTAssertEqual((0..<5).map { split.recordCount(ofBlock: $0) }, [10, 10, 5, 10, 2])
        XCTAssertEqual(split.location(ofBlock: 3).shard, 1)
        XCTAssertEqual(split.location(ofBlock: 3).block, 0)
        XCTAssertEqual(split.maxBlockBytes, 640)
        XCTAssertEqual(try decodeAll(split), rawA + rawB)
    }

    // MARK: the zstd command line tool reads a shard as an ordinary multi-frame file

    func testZstdCommandLineTestsListsAndDecompressesAShard() throws {
        let (path, raw) = try writeShard(count: 105)
        let (testStatus, _) = try runProcess("/usr/bin/zstd", ["-t", "-q", path])
        XCTAssertEqual(testStatus, 0, "zstd -t rejected the shard")
        let (listStatus, listing) = try runProcess("/usr/bin/zstd", ["-l", path])
        XCTAssertEqual(listStatus, 0, "zstd -l rejected the shard")
        XCTAssertTrue(String(decoding: listing, as: UTF8.self).contains("13"), "zstd -l should count 11 data + 2 skippable frames")
        let (catStatus, decompressed) = try runProcess("/usr/bin/zstd", ["-dc", "-q", path])
        XCTAssertEqual(catStatus, 0)
        XCTAssertEqual(decompressed, raw)
    }

    func testZstdCommandLineRejectsACorruptedBlock() throws {
        let (path, _) = try writeShard(count: 105)
        let reader = try ShardReader(path: path)
        var bytes = readBytes(path)
        let e = reader.blocks[4]
        bytes[e.offset + e.compressedSize - 1] ^= 0x10  // inside the content checksum
        writeBytes(bytes, path)
        let (status, _) = try runProcess("/usr/bin/zstd", ["-t", "-q", path])
        XCTAssertNotEqual(status, 0)
    }
}
