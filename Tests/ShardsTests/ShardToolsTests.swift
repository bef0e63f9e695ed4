import Foundation
import XCTest
@testable import Converters
@testable import Shards

/// The split as the loader uses it from several threads, and the library side of info and cat.
final class ShardToolsTests: XCTestCase {
    var dir = ""
    var raw: [UInt8] = []
    override func setUpWithError() throws {
        dir = makeTempDirectory()
        let n = 240
        let pixels = testBytes(n * 36, seed: 12, range: 32)
        let labels = testBytes(n, seed: 13, range: 4)
        writeBytes(idxBytes(dims: [n, 6, 6], data: pixels), dir + "/i.idx")
        writeBytes(idxBytes(dims: [n], data: labels), dir + "/l.idx")
        raw = records(images: pixels, labels: labels.map { Int32($0) }, imageBytes: 36)
        _ = try convert(try IDXInput(images: dir + "/i.idx", labels: dir + "/l.idx"), to: dir + "/ds", blockBytes: 400, shardRecords: 100)
    }
    override func tearDown() { removeDirectory(dir) }

    func testDecodersOnSeveralThreadsReadTheSameBytes() throws {
        let split: RecordBlockSource = try ShardDataset(directory: dir + "/ds").split("train")
        let results = UnsafeMutableBufferPointer<[UInt8]>.allocate(capacity: 4)
        results.initialize(repeating: [])
        defer { _ = results.deinitialize(); results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            results[t] = (try? decodeAll(split)) ?? []
        }
        for t in 0..<4 { XCTAssertEqual(results[t], raw, "thread \(t)") }
    }

    func testInfoReportsSizesAndRatio() throws {
        let info = try DatasetInfo(directory: dir + "/ds")
        XCTAssertEqual(info.splits.map(\.name), ["train"])
        XCTAssertEqual(info.splits[0].records, 240)
        XCTAssertEqual(info.splits[0].shards, 3)
        XCTAssertEqual(info.splits[0].blocks, 10 + 10 + 4)  // shards of 100, 100, 40 records; 10 records per block
        XCTAssertEqual(info.splits[0].uncompressedBytes, 240 * 40)
        XCTAssertGreaterThan(info.splits[0].compressionRatio, 1)  // 5-bit pixels compress
        XCTAssertTrue(info.description.contains("240 records"))
    }

    func testBrowserDecodesOneBlockAndDescribesRecords() throws {
        let block = try RecordBrowser(directory: dir + "/ds").block(split: "train", shard: 1, block: 2)
        XCTAssertEqual(block.count, 10)
        XCTAssertEqual(block.bytes, Array(raw[(100 + 20) * 40 ..< (100 + 30) * 40]))
        XCTAssertTrue(block.describe(record: 0).hasPrefix("#0  label \(raw[120 * 40 + 36])  image uint8[6, 6, 1]"))
        XCTAssertTrue(block.describe(record: 0, hex: true).hasSuffix("00 00 00"))
        assertShardError(try RecordBrowser(directory: dir + "/ds").block(split: "train", shard: 3, block: 0)) {
            if case .invalidOption("shard", _) = $0 { return true } else { return false }
        }
    }

    func testRecordRangeSyntax() throws {
        XCTAssertEqual(try RecordRange.parse(nil, count: 4), 0 ..< 4)
        XCTAssertEqual(try RecordRange.parse("3", count: 10), 3 ..< 4)
        XCTAssertEqual(try RecordRange.parse("2..<5", count: 10), 2 ..< 5)
        XCTAssertEqual(try RecordRange.parse("2...5", count: 10), 2 ..< 6)
        XCTAssertEqual(try RecordRange.parse("2-5", count: 10), 2 ..< 6)
        assertShardError(try RecordRange.parse("8..<12", count: 10)) { if case .invalidOption("range", _) = $0 { return true } else { return false } }
    }
}
