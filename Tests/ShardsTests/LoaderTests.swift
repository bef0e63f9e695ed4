import XCTest
import Foundation
import MemoryLedger
@testable import Shards

final class LoaderTests: XCTestCase {
    func testEveryRecordAppearsExactlyOncePerEpochAndLabelsMatch() throws {
        // Uneven blocks and an empty one, 1000 records: the last batch holds 1000 % 64 = 40.
        let sizes = Array(repeating: 37, count: 27) + [0, 1]
        let source = LoaderFixtures.source(blockSizes: sizes)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 64, threads: 2),
                                     ledger: Ledger())
        for epoch in 0..<2 {
            loader.startEpoch(epoch)
            var ids: [Int] = []
            var sizes: [Int] = []
            while let batch = try loader.nextBatch() {
                sizes.append(batch.count)
                for i in 0..<batch.count {
                    let id = LoaderFixtures.recordID(batch, i)
                    ids.append(id)
                    XCTAssertEqual(Int(batch.labels.pointer[i]), id % 10)
                }
            }
            XCTAssertEqual(ids.sorted(), Array(0..<1000), "epoch \(epoch)")
            XCTAssertEqual(sizes.last, 1000 % 64)
            XCTAssertEqual(sizes.count, loader.batchesPerEpoch)
            XCTAssertNotEqual(ids, Array(0..<1000), "shuffled")
        }
    }

    func testShuffleOffReadsRecordsInStorageOrder() throws {
        let source = LoaderFixtures.source(blockSizes: [10, 0, 25, 3])
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 7, shuffle: false, threads: 2),
                                     ledger: Ledger())
        var ids: [Int] = []
        while let batch = try loader.nextBatch() {
            for i in 0..<batch.count { ids.append(LoaderFixtures.recordID(batch, i)) }
        }
        XCTAssertEqual(ids, Array(0..<38))
    }

    func testOutputIsBitIdenticalForAnyThreadCount() throws {
        let source = LoaderFixtures.uniformSource(blocks: 23, recordsPerBlock: 19)
        var outputs: [LoaderOutput] = []
        for threads in 0...3 {
            let config = LoaderFixtures.config(batchSize: 32, poolBlocks: 5, prefetchBlocks: 3, threads: threads,
                                               augment: .fashionMNIST)
            let loader = try BatchLoader(source: source, config: config, ledger: Ledger())
            loader.startEpoch(3)
            outputs.append(try LoaderOutput.drain(loader))
        }
        XCTAssertEqual(outputs[0].labels.count, 23 * 19)
        for threads in 1...3 { XCTAssertTrue(outputs[threads] == outputs[0], "threads \(threads)") }
    }

    func testEpochsAndSeedsGiveDifferentOrders() throws {
        let source = LoaderFixtures.uniformSource(blocks: 10, recordsPerBlock: 20)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(), ledger: Ledger())
        let epoch0 = try LoaderOutput.drain(loader)
        loader.startEpoch(1)
        let epoch1 = try LoaderOutput.drain(loader)
        loader.startEpoch(0)
        let epoch0Again = try LoaderOutput.drain(loader)
        XCTAssertFalse(epoch0 == epoch1)
        XCTAssertTrue(epoch0 == epoch0Again)
        let other = try BatchLoader(source: source, config: LoaderFixtures.config(seed: 43), ledger: Ledger())
        XCTAssertFalse(try LoaderOutput.drain(other) == epoch0)
    }

    func testDropLastDropsOnlyThePartialBatch() throws {
        let source = LoaderFixtures.uniformSource(blocks: 5, recordsPerBlock: 21)  // 105 records
        let keep = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 25), ledger: Ledger())
        let drop = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 25, dropLast: true), ledger: Ledger())
        let kept = try LoaderOutput.drain(keep), dropped = try LoaderOutput.drain(drop)
        XCTAssertEqual(kept.batchSizes, [25, 25, 25, 25, 5])
        XCTAssertEqual(dropped.batchSizes, [25, 25, 25, 25])
        XCTAssertEqual(Array(kept.labels.prefix(100)), dropped.labels)
        XCTAssertEqual(drop.batchesPerEpoch, 4)
        XCTAssertNil(try drop.nextBatch())
    }

    func testBatchesReuseTwoBufferSetsWithoutAllocating() throws {
        let ledger = Ledger()
        let source = LoaderFixtures.uniformSource(blocks: 12, recordsPerBlock: 30)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 16, threads: 2), ledger: ledger)
        let first = try XCTUnwrap(loader.nextBatch())
        let allocationsAfterFirst = ledger.operationCounts.allocations
        let second = try XCTUnwrap(loader.nextBatch())
        let third = try XCTUnwrap(loader.nextBatch())
        XCTAssertFalse(first.images === second.images)
        XCTAssertTrue(first.images === third.images && first.labels === third.labels)
        while try loader.nextBatch() != nil {}
        loader.startEpoch(1)
        while try loader.nextBatch() != nil {}
        XCTAssertEqual(ledger.operationCounts.allocations, allocationsAfterFirst, "no allocation per batch or epoch")
        XCTAssertEqual(ledger.current().bytes(.loader), ledger.current().total)
    }

    func testDecodersReadAheadByPrefetchBlocksAndNoFurther() throws {
        let source = LoaderFixtures.uniformSource(blocks: 30, recordsPerBlock: 40)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 8, poolBlocks: 2, prefetchBlocks: 3, threads: 2),
                                     ledger: Ledger())
        _ = try loader.nextBatch()
        // The pool holds 2 blocks; the decoders fill the 3 spare slots while nobody consumes.
        let deadline = Date().addingTimeInterval(5)
        while source.decodedBlocks.count < 5 && Date() < deadline { usleep(1000) }
        XCTAssertEqual(source.decodedBlocks.count, 5)
        usleep(50_000)
        XCTAssertEqual(source.decodedBlocks.count, 5, "read-ahead is bounded by the spare slots")

        // Without threads, nothing is decoded before it is needed.
        let inline = LoaderFixtures.uniformSource(blocks: 30, recordsPerBlock: 40)
        let inlineLoader = try BatchLoader(source: inline, config: LoaderFixtures.config(batchSize: 8, poolBlocks: 2, threads: 0),
                                           ledger: Ledger())
        XCTAssertEqual(inline.decodedBlocks.count, 0)
        _ = try inlineLoader.nextBatch()
        XCTAssertEqual(inline.decodedBlocks.count, 2)
    }

    func testStartingAnEpochAfterAFailureRecovers() throws {
        let source = LoaderFixtures.uniformSource(blocks: 20, recordsPerBlock: 25, failingBlock: 19)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(shuffle: false, threads: 2), ledger: Ledger())
        let before = try LoaderOutput.drain(loader, limit: 3)
        XCTAssertThrowsError(try LoaderOutput.drain(loader)) { error in
            guard case LoaderError.decodeFailed(block: 19, _) = error else { return XCTFail("expected block 19 to fail, got \(error)") }
        }
        loader.startEpoch(0)
        XCTAssertTrue(try LoaderOutput.drain(loader, limit: 3) == before)
    }

    func testEmptySourceEndsAtOnce() throws {
        let source = LoaderFixtures.source(blockSizes: [0, 0])
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(), ledger: Ledger())
        XCTAssertNil(try loader.nextBatch())
    }
}
