import XCTest
import MemoryLedger
@testable import Shards

final class LoaderMemoryTests: XCTestCase {
    /// Runs two epochs and a resume on its own ledger and returns the loader's peak bytes.
    private func peakBytes(blocks: Int, config: LoaderConfig) throws -> Int {
        let ledger = Ledger()
        let source = LoaderFixtures.uniformSource(blocks: blocks, recordsPerBlock: 50)
        do {
            let loader = try BatchLoader(source: source, config: config, ledger: ledger)
            _ = try LoaderOutput.drain(loader)
            loader.startEpoch(1)
            _ = try LoaderOutput.drain(loader, limit: 7)
            try loader.resume(from: loader.cursor)
            _ = try LoaderOutput.drain(loader)
        }
        XCTAssertEqual(ledger.current().total, 0, "everything freed with the loader")
        XCTAssertEqual(ledger.peak().total, ledger.peak().bytes(.loader))
        return ledger.peak().total
    }

    func testPeakLedgerBytesDoNotGrowWithDatasetSize() throws {
        for threads in [0, 2] {
            var config = LoaderFixtures.config(batchSize: 32, poolBlocks: 4, prefetchBlocks: 3, threads: threads,
                                               augment: .fashionMNIST)
            let small = try peakBytes(blocks: 20, config: config)
            let large = try peakBytes(blocks: 200, config: config)
            XCTAssertEqual(small, large, "threads \(threads)")

            // The exact budget: slots of one block each (K + prefetch with threads), two sets of
            // batch buffers, K record-order rows and the pixel table. Records are 6x6 + 1 bytes.
            let blockBytes = 50 * 37
            let slots = 4 + (threads > 0 ? 3 : 0)
            let expected = slots * blockBytes + 2 * (32 * 36 * 4) + 2 * (32 * 4) + 4 * 50 * 4 + 256 * 4
            XCTAssertEqual(large, expected, "threads \(threads)")
            let bound = try LoaderMemoryBound(source: LoaderFixtures.uniformSource(blocks: 200, recordsPerBlock: 50), config: config)
            XCTAssertEqual(bound.totalBytes, expected, "the bound `shards bench` prints, threads \(threads)")

            // Computing mean and std first uses one temporary block that is gone before the slots exist.
            config.mean = nil
            config.std = nil
            XCTAssertEqual(try peakBytes(blocks: 200, config: config), expected)
        }
    }
}
