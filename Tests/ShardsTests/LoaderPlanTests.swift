import XCTest
@testable import Shards

final class LoaderPlanTests: XCTestCase {
    func testBlockOrderIsAPermutationForEverySizeUpTo300() {
        for count in 0...300 {
            let order = BlockOrder(count: count, key: UInt64(count) &* 0x9E37)
            let visited = (0..<count).map { order.block(at: $0) }
            XCTAssertEqual(visited.sorted(), Array(0..<count), "count \(count)")
        }
    }

    func testBlockOrderDiffersBetweenEpochsAndIsNotTheIdentity() {
        let a = BlockOrder(count: 200, key: LoaderSeeds.blockOrder(seed: 1, epoch: 0))
        let b = BlockOrder(count: 200, key: LoaderSeeds.blockOrder(seed: 1, epoch: 1))
        let orderA = (0..<200).map { a.block(at: $0) }
        let orderB = (0..<200).map { b.block(at: $0) }
        XCTAssertNotEqual(orderA, orderB)
        // A random permutation of 200 has about one fixed point; allow a generous margin.
        XCTAssertLessThan(zip(orderA, 0..<200).filter { $0 == $1 }.count, 10)
    }

    func testBlockOrderSpreadsFirstPositionsUniformly() {
        // Over many epochs, the block at position 0 should be close to uniform over 8 blocks:
        // 4000 epochs, expected 500 each; a chi-square of 7 degrees of freedom beyond 30 has
        // probability below 1e-4.
        var hits = [Int](repeating: 0, count: 8)
        for epoch in 0..<4000 {
            hits[BlockOrder(count: 8, key: LoaderSeeds.blockOrder(seed: 7, epoch: epoch)).block(at: 0)] += 1
        }
        let chiSquare = hits.reduce(0.0) { $0 + pow(Double($1) - 500, 2) / 500 }
        XCTAssertLessThan(chiSquare, 30, "\(hits)")
    }

    func testPlanEmitsEveryRecordOnceWithEmptyAndUnevenBlocks() {
        let source = LoaderFixtures.source(blockSizes: [5, 0, 17, 1, 0, 9, 30, 2, 0])
        for shuffle in [true, false] {
            var plan = EpochPlan(source: source, seed: 3, epoch: 2, shuffle: shuffle, poolBlocks: 4)
            var seen = Set<[Int]>()
            while plan.remaining > 0 {
                let draw = plan.draw()
                XCTAssertTrue(seen.insert([draw.block, draw.position]).inserted)
            }
            XCTAssertEqual(seen.count, source.recordCount)
        }
    }

    func testPlanDependsOnlyOnRecordCountsNotOnContent() {
        let a = LoaderFixtures.source(blockSizes: [7, 3, 12, 9, 9, 4], label: { $0 % 10 })
        let b = LoaderFixtures.source(blockSizes: [7, 3, 12, 9, 9, 4], label: { ($0 * 3) % 10 }, fingerprint: "other")
        var planA = EpochPlan(source: a, seed: 11, epoch: 5, shuffle: true, poolBlocks: 3)
        var planB = EpochPlan(source: b, seed: 11, epoch: 5, shuffle: true, poolBlocks: 3)
        while planA.remaining > 0 {
            let x = planA.draw(), y = planB.draw()
            XCTAssertEqual([x.slot, x.block, x.position], [y.slot, y.block, y.position])
            XCTAssertEqual(x.change, y.change)
        }
    }
}
