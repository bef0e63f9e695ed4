import XCTest
import Foundation
import MemoryLedger
@testable import Shards

final class LoaderResumeTests: XCTestCase {
    /// 600 records in uneven blocks (the last holds 9), batches of 32.
    private let source = LoaderFixtures.source(blockSizes: Array(repeating: 31, count: 19) + [9, 2])

    private func config(threads: Int) -> LoaderConfig {
        LoaderFixtures.config(batchSize: 32, poolBlocks: 4, prefetchBlocks: 2, threads: threads, augment: .fashionMNIST)
    }

    func testResumeEqualsUninterruptedAtSeveralCutsAndThreadCounts() throws {
        let reference = try BatchLoader(source: source, config: config(threads: 0), ledger: Ledger())
        reference.startEpoch(2)
        let whole = try LoaderOutput.drain(reference)
        let totalBatches = whole.batchSizes.count
        let floatsPerRecord = 36
        for threads in 1...3 {
            for cut in [0, 1, 2, 7, totalBatches - 1, totalBatches] {
                // Run to the cut, take the cursor through JSON as a checkpoint would.
                let first = try BatchLoader(source: source, config: config(threads: threads), ledger: Ledger())
                first.startEpoch(2)
                let head = try LoaderOutput.drain(first, limit: cut)
                let saved = try JSONEncoder().encode(first.cursor)
                let cursor = try JSONDecoder().decode(LoaderCursor.self, from: saved)

                let resumed = try BatchLoader(source: source, config: config(threads: threads), cursor: cursor, ledger: Ledger())
                let tail = try LoaderOutput.drain(resumed)
                let records = head.labels.count
                XCTAssertEqual(head.labels + tail.labels, whole.labels, "threads \(threads) cut \(cut)")
                XCTAssertEqual(head.batchSizes + tail.batchSizes, whole.batchSizes, "threads \(threads) cut \(cut)")
                XCTAssertEqual(tail.imageBits, Array(whole.imageBits[(records * floatsPerRecord)...]),
                               "threads \(threads) cut \(cut)")
                // The next epoch after a resume is the same as well.
                resumed.startEpoch(3)
                reference.startEpoch(3)
                XCTAssertTrue(try LoaderOutput.drain(resumed) == LoaderOutput.drain(reference))
                reference.startEpoch(2)
            }
        }
    }

    func testResumeOnAnExistingLoaderMatches() throws {
        let loader = try BatchLoader(source: source, config: config(threads: 2), ledger: Ledger())
        let whole = try LoaderOutput.drain(loader)
        loader.startEpoch(0)
        _ = try LoaderOutput.drain(loader, limit: 5)
        let cursor = loader.cursor
        loader.startEpoch(4)  // wander off, then come back
        _ = try LoaderOutput.drain(loader, limit: 2)
        try loader.resume(from: cursor)
        let tail = try LoaderOutput.drain(loader)
        XCTAssertEqual(tail.labels, Array(whole.labels[(5 * 32)...]))
        XCTAssertEqual(tail.imageBits, Array(whole.imageBits[(5 * 32 * 36)...]))
    }

    func testResumeDecodesOnlyBlocksStillInThePool() throws {
        // Sequential order makes the expectation exact: after 100 records of 31-record blocks,
        // blocks 0, 1, 2 are used up and block 3 is at record 7: the resume decodes block 3 first
        // and never blocks 0 to 2.
        let sequential = LoaderFixtures.config(batchSize: 20, shuffle: false, threads: 0)
        let loader = try BatchLoader(source: source, config: sequential, ledger: Ledger())
        _ = try LoaderOutput.drain(loader, limit: 5)
        let cursor = loader.cursor
        XCTAssertEqual(cursor.recordsConsumed, 100)
        source.resetDecodedBlocks()
        let resumed = try BatchLoader(source: source, config: sequential, cursor: cursor, ledger: Ledger())
        let batch = try XCTUnwrap(resumed.nextBatch())
        XCTAssertEqual(LoaderFixtures.recordID(batch, 0), 100)
        XCTAssertEqual(source.decodedBlocks, [3])

        // Shuffled: only the blocks in the pool at the cut (at most K) are decoded before the
        // first batch, never one that was used up.
        let shuffled = config(threads: 0)
        let first = try BatchLoader(source: source, config: shuffled, ledger: Ledger())
        var plan = EpochPlan(source: source, seed: shuffled.seed, epoch: 0, shuffle: true, poolBlocks: 4)
        var usedUp = Set<Int>()
        for _ in 0..<(10 * 32) {
            let draw = plan.draw()
            if draw.change != .none { usedUp.insert(draw.block) }
        }
        _ = try LoaderOutput.drain(first, limit: 10)
        source.resetDecodedBlocks()
        let second = try BatchLoader(source: source, config: shuffled, cursor: first.cursor, ledger: Ledger())
        _ = try second.nextBatch()
        let decoded = source.decodedBlocks
        XCTAssertFalse(usedUp.isEmpty)
        XCTAssertTrue(Set(decoded).isDisjoint(with: usedUp), "decoded \(decoded), used up \(usedUp)")
        XCTAssertEqual(Array(decoded.prefix(plan.liveBlocks.count)), plan.liveBlocks)
    }

    func testCursorFromAnotherSourceIsRejected() throws {
        let loader = try BatchLoader(source: source, config: config(threads: 1), ledger: Ledger())
        _ = try loader.nextBatch()
        let other = LoaderFixtures.source(blockSizes: Array(repeating: 31, count: 19) + [9, 2], fingerprint: "another-dataset")
        XCTAssertThrowsError(try BatchLoader(source: other, config: config(threads: 1), cursor: loader.cursor, ledger: Ledger())) { error in
            guard case LoaderError.cursorMismatch(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("another-dataset"), message)
        }
        var otherSeed = config(threads: 1)
        otherSeed.seed = 5
        XCTAssertThrowsError(try BatchLoader(source: source, config: otherSeed, cursor: loader.cursor, ledger: Ledger())) { error in
            guard case LoaderError.cursorMismatch(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("seed"), message)
        }
        var otherPool = config(threads: 1)
        otherPool.poolBlocks = 8
        XCTAssertThrowsError(try loader.resume(from: BatchLoader(source: source, config: otherPool, ledger: Ledger()).cursor)) { error in
            guard case LoaderError.cursorMismatch(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("poolBlocks 8"), message)
        }
    }

    func testCursorJSONIsUnder512BytesAndRoundTripsLargeSeeds() throws {
        var config = config(threads: 1)
        config.seed = UInt64.max - 12345
        let loader = try BatchLoader(source: LoaderFixtures.source(blockSizes: [40, 40], fingerprint: String(repeating: "f", count: 64)),
                                     config: config, ledger: Ledger())
        loader.startEpoch(199)
        _ = try loader.nextBatch()
        let json = try JSONEncoder().encode(loader.cursor)
        XCTAssertLessThan(json.count, 512, String(decoding: json, as: UTF8.self))
        XCTAssertEqual(try JSONDecoder().decode(LoaderCursor.self, from: json), loader.cursor)
        XCTAssertEqual(loader.cursor.recordsConsumed, 32)
        XCTAssertEqual(loader.cursor.epoch, 199)
    }
}
