import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest
@testable import Training

/// Pipeline stages in one process, each network (`Network(holding:)`) on its own ledger, fed as
/// `Trainer.runStagedEpoch` feeds it (the batch, or a copy of the previous stage's hand-off
/// booked as its input; its own hand-offs kept in a ring of `inFlight` sends): every stage's
/// ledger peak is the planner's prediction byte for byte, the stages compute what one process
/// computes, and the balanced placement is the best of all placements.
final class StagePlanTests: XCTestCase {
    static let batch = 8

    struct StagedRun {
        var peaks: [LedgerSnapshot]
        /// The last stage's output-layer loss per step, and every block's losses.
        var outputLosses: [Float]
        var blockLosses: [[Float]]
    }

    static func runStages(_ spec: ModelSpec, placement: StagePlacement, chunk: Int?, engine: ConvEngine, inFlight: Int = 1,
                          steps: Int = 3) -> StagedRun {
        let ledgers = placement.blocks.map { _ in Ledger(eventCapacity: 1 << 10) }
        let networks = zip(placement.blocks, ledgers).map { range, ledger -> Network in
            let n = Network(spec: spec, seed: 5, ledger: ledger, engine: engine, holding: range)
            n.chunkSize = chunk
            return n
        }
        for l in ledgers { l.resetPeaks() }  // as every epoch starts: the transient blocks of construction are gone
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: ledgers[0], zeroed: false)
        var rng = Xoshiro256(seed: 9)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        let labels = ProofModel.labels(batch)
        var rings: [[Tensor]] = placement.blocks.map { _ in [] }
        var run = StagedRun(peaks: [], outputLosses: [], blockLosses: [])
        for step in 0..<steps {
            var input = images
            var losses: [Float] = []
            for (s, network) in networks.enumerated() {
                let last = s == networks.count - 1
                while rings[s].count > inFlight { rings[s].removeFirst() }  // StageLink.settle
                var r = labels.withUnsafeBufferPointer {
                    network.trainStage(input, labels: $0.baseAddress!, lr: 1e-3, step: step, blocks: placement.blocks[s], trainsOutput: last)
                }
                losses += r.stats.blocks.map(\.loss)
                if last {
                    run.outputLosses.append(r.stats.outputLoss)
                } else {
                    let handOff = r.handOff!
                    r.handOff = nil
                    let received = Tensor(handOff.shape, .input, layer: placement.blocks[s + 1].lowerBound, label: "received hand-off",
                                          ledger: ledgers[s + 1], zeroed: false)
                    received.copy(from: handOff)
                    rings[s].append(handOff)
                    input = received
                }
            }
            run.blockLosses.append(losses)
        }
        run.peaks = ledgers.map { $0.peak() }
        withExtendedLifetime(rings) {}
        return run
    }

    func check(_ spec: ModelSpec, placement: StagePlacement, chunk: Int?, engine: ConvEngine, inFlight: Int = 1,
               file: StaticString = #filePath, line: UInt = #line) {
        let table = ShapeTable(spec: spec, engine: engine)
        let plans = MemoryPlanner.stagePlans(table, placement: placement, batchSize: Self.batch, chunk: chunk, inFlight: inFlight)
        let measured = Self.runStages(spec, placement: placement, chunk: chunk, engine: engine, inFlight: inFlight).peaks
        for (s, (plan, peak)) in zip(plans, measured).enumerated() {
            let what = "\(spec.kind.rawValue) \(spec.loss.rawValue) stages \(placement.counts) stage \(s + 1) chunk \(chunk.map(String.init) ?? "none") \(engine.rawValue)"
            XCTAssertEqual(plan.peak, peak.total, "\(what): predicted peak vs ledger", file: file, line: line)
            for c in Category.allCases {
                XCTAssertEqual(plan.peakBreakdown[c], peak.bytes(c), "\(what): \(c) at the peak", file: file, line: line)
            }
        }
    }

    func testPlannerPredictsEveryMLPStagePeakWholeAndChunked() {
        for loss in [LossKind.predsim, .pred, .simBpf] {
            let spec = ProofModel.spec(loss)
            for counts in [[1, 2], [2, 1], [1, 1, 1]] {
                check(spec, placement: StagePlacement(counts: counts), chunk: nil, engine: .im2col)
                check(spec, placement: StagePlacement(counts: counts), chunk: 3, engine: .im2col, inFlight: 0)
                check(spec, placement: StagePlacement(counts: counts), chunk: nil, engine: .im2col, inFlight: 2)
            }
        }
    }

    /// vgg8b at reduced width: stages cut between conv blocks (after vgg8b's first block, whose
    /// hand-off is recomputed in chunked steps when the next block is on the same stage) and
    /// before the Linear block, under both conv engines.
    func testPlannerPredictsEveryVGGStagePeakUnderBothEngines() {
        let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
        for counts in [[1, 6], [2, 2, 2, 1]] {
            check(spec, placement: StagePlacement(counts: counts), chunk: nil, engine: .im2col)
            check(spec, placement: StagePlacement(counts: counts), chunk: 3, engine: .im2col)
        }
        check(spec, placement: StagePlacement(counts: [3, 3, 1]), chunk: 3, engine: .dnnl)
    }

    /// The stages compute what one process does: the same losses, bit for bit, step after step.
    func testStagesInOneProcessGiveTheOneProcessLossesBitForBit() {
        let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
        for chunk in [nil, 3] as [Int?] {
            let whole = Self.runStages(spec, placement: StagePlacement(counts: [7]), chunk: chunk, engine: .im2col)
            let staged = Self.runStages(spec, placement: StagePlacement(counts: [2, 4, 1]), chunk: chunk, engine: .im2col)
            XCTAssertEqual(whole.outputLosses.map(\.bitPattern), staged.outputLosses.map(\.bitPattern), "chunk \(chunk.map(String.init) ?? "none")")
            XCTAssertEqual(whole.blockLosses.map { $0.map(\.bitPattern) }, staged.blockLosses.map { $0.map(\.bitPattern) })
        }
    }

    /// The balanced placement's largest stage is the smallest over every placement of
    /// consecutive blocks (all of them enumerated), and no larger than an even split's.
    func testBalancedPlacementHasTheSmallestLargestStage() {
        let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
        let table = ShapeTable(spec: spec, engine: .im2col)
        let n = table.hiddenLayers.count
        for stages in 2...4 {
            let balanced = StagePlanner.balanced(table, stages: stages, batchSize: Self.batch)
            var best = Int.max
            func enumerate(_ start: Int, _ left: Int, _ counts: [Int]) {
                if left == 1 {
                    let placement = StagePlacement(counts: counts + [n - start])
                    best = min(best, MemoryPlanner.stagePlans(table, placement: placement, batchSize: Self.batch).map(\.peak).max()!)
                    return
                }
                for c in 1...(n - start - left + 1) { enumerate(start + c, left - 1, counts + [c]) }
            }
            enumerate(0, stages, [])
            XCTAssertEqual(balanced.largest.peak, best, "\(stages) stages")
            let even = MemoryPlanner.stagePlans(table, placement: StagePlacement(blocks: n, stages: stages), batchSize: Self.batch)
            XCTAssertLessThanOrEqual(balanced.largest.peak, even.map(\.peak).max()!)
            XCTAssertEqual(balanced.plans.map(\.peak), MemoryPlanner.stagePlans(table, placement: balanced.placement, batchSize: Self.batch).map(\.peak))
        }
    }

    /// Under a budget: the fewest stages whose largest stage fits, or a refusal with the numbers.
    func testBudgetPicksTheFewestStagesThatFitOrRefuses() throws {
        let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
        let table = ShapeTable(spec: spec, engine: .im2col)
        let none = ProcessOverhead(bytes: 0, what: "")
        let one = MemoryPlanner.plan(table, batchSize: Self.batch, chunk: 1)
        let two = StagePlanner.balanced(table, stages: 2, batchSize: Self.batch, chunk: 1)
        XCTAssertLessThan(two.largest.peak, one.peak)
        let chosen = try StagePlanner.choose(table, stages: nil, batchSize: Self.batch, chunk: 1, optimizer: OptimizerSettings(),
                                             budget: two.largest.peak, overhead: none)
        XCTAssertEqual(chosen.placement.stageCount, 2)
        XCTAssertThrowsError(try StagePlanner.choose(table, stages: 2, batchSize: Self.batch, chunk: 1, optimizer: OptimizerSettings(),
                                                     budget: two.largest.peak - 1, overhead: none)) { error in
            XCTAssertTrue("\(error)".contains("per stage"), "\(error)")
        }
    }
}
