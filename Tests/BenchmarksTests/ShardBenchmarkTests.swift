import Converters
import Foundation
import Shards
import XCTest
@testable import Benchmarks

/// `shards bench` on a small converted dataset: decode and compression settings, and the loader
/// on the real shards.
final class ShardBenchmarkTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "shard-benchmark-\(getpid())-\(UInt64.random(in: 0 ..< .max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let n = 240
        let pixels = testBytes(n * 36, seed: 12, range: 32)
        let labels = testBytes(n, seed: 13, range: 4)
        _ = FileManager.default.createFile(atPath: dir + "/i.idx", contents: Data(idxBytes(dims: [n, 6, 6], data: pixels)))
        _ = FileManager.default.createFile(atPath: dir + "/l.idx", contents: Data(idxBytes(dims: [n], data: labels)))
        let options = ConversionOptions(directory: dir + "/ds", split: "train", writer: ShardWriterOptions(blockBytes: 400, level: 3, threads: 1),
                                        shardRecords: 100, shuffleSeed: nil, memoryBudget: 64 << 20)
        _ = try DatasetConverter.convert(try IDXInput(images: dir + "/i.idx", labels: dir + "/l.idx"), options: options)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testBenchmarkMeasuresEveryRequestedSetting() throws {
        let report = try ShardBenchmark.run(directory: dir + "/ds", configuration: .init(threads: 2, levels: [1, 5], blockSizes: [400, 4000],
                                                                                         sampleBytes: 4000, minimumSeconds: 0.03))
        XCTAssertEqual(report.decode.map(\.threads), [1, 2])
        XCTAssertTrue(report.decode.allSatisfy { $0.megabytesPerSecond > 0 })
        XCTAssertEqual(report.compression.map(\.level), [1, 5, 1, 5])
        XCTAssertEqual(report.compression.map(\.blockBytes), [400, 400, 4000, 4000])
        XCTAssertTrue(report.compression.allSatisfy { $0.ratio > 1 })
    }

    func testBenchmarkRunsTheLoaderOnTheShardsAndItsPeakEqualsTheBound() throws {
        let config = ShardBenchmark.Configuration(levels: [3], blockSizes: [4000], sampleBytes: 4000, minimumSeconds: 0.03,
                                                  loader: LoaderConfig(batchSize: 16, poolBlocks: 4, prefetchBlocks: 2, augment: .fashionMNIST),
                                                  loaderThreads: [2, 1], trainRecordsPerSecond: 100)
        let report = try ShardBenchmark.run(directory: dir + "/ds", configuration: config)
        let loader = try XCTUnwrap(report.loader)
        XCTAssertEqual(loader.results.map(\.threads), [1, 2], "fewest threads first")
        XCTAssertTrue(loader.results.allSatisfy { $0.recordsPerSecond > 0 && $0.megabytesPerSecond > 0 })
        // 400-byte blocks of 10 records: (4 + 2) slots, 4 record-order rows, 2 x 16 images of 36 floats.
        XCTAssertEqual(loader.bound.totalBytes, 6 * 400 + 4 * 10 * 4 + 2 * 16 * (36 * 4 + 4) + 256 * 4)
        XCTAssertTrue(loader.results.allSatisfy { $0.peakLedgerBytes == loader.bound.totalBytes })
        XCTAssertEqual(loader.deliveryRatio, loader.results[0].recordsPerSecond / 100, accuracy: 1e-9)
        XCTAssertTrue(report.description.contains("loader delivers"), report.description)
        XCTAssertTrue(report.description.contains("training's consumption (100 samples/s)"), report.description)

        let without = try ShardBenchmark.run(directory: dir + "/ds", configuration: .init(levels: [3], blockSizes: [4000], sampleBytes: 4000,
                                                                                       minimumSeconds: 0.03, loaderThreads: []))
        XCTAssertNil(without.loader)
        XCTAssertFalse(without.description.contains("loader"))
    }

    func testGroupedNumbersHaveThousandsSeparators() {
        XCTAssertEqual(formatGrouped(7_700), "7,700")
        XCTAssertEqual(formatGrouped(123), "123")
        XCTAssertEqual(formatGrouped(1_234_567), "1,234,567")
        XCTAssertEqual(formatGrouped(-1_000), "-1,000")
    }

    /// Deterministic test bytes (a small LCG), as ShardsTests makes them.
    private func testBytes(_ count: Int, seed: UInt64, range: Int) -> [UInt8] {
        var x = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<count).map { _ in
            x = x &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(Int(x >> 33) % range)
        }
    }

    /// IDX file bytes: magic 00 00 08 rank, big-endian dims, data.
    private func idxBytes(dims: [Int], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return out + data
    }
}
