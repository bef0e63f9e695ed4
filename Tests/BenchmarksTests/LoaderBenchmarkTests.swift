import Benchmarks
import XCTest
import MemoryLedger
import Shards

final class LoaderBenchmarkTests: XCTestCase {
    func testSyntheticSourceHasFashionMNISTShapedRecords() throws {
        let source = SyntheticRecordSource(records: 60_000)
        XCTAssertEqual(source.schema.recordSize, 785)
        XCTAssertEqual(source.recordsPerBlock, 333)
        XCTAssertEqual(source.blockCount, 181)
        XCTAssertEqual((0..<source.blockCount).reduce(0) { $0 + source.recordCount(ofBlock: $1) }, 60_000)
    }

    func testBenchmarkRunsAndReportsTheLoadersPeak() throws {
        let source = SyntheticRecordSource(records: 3_000, blockBytes: 32 * 1024)
        let config = LoaderConfig(batchSize: 128, poolBlocks: 4, prefetchBlocks: 2, threads: 1,
                                  augment: .fashionMNIST, mean: [0.286], std: [0.353])
        let result = try LoaderBenchmark.run(source: source, config: config, seconds: 0.05)
        XCTAssertGreaterThan(result.records, 0)
        XCTAssertGreaterThan(result.recordsPerSecond, 0)
        let expectedPeak = 6 * source.maxBlockBytes + 2 * 128 * 784 * 4 + 2 * 128 * 4 + 4 * source.recordsPerBlock * 4 + 256 * 4
        XCTAssertEqual(result.peakLedgerBytes, expectedPeak)
    }
}
