import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest
@testable import Training

/// The greedy schedule's planner (`ShapeTable.greedyStepProgram`, one program per round)
/// against the ledger of real greedy steps: the peak byte for byte and its breakdown by
/// category, for the mlp and a reduced vgg8b, whole and chunked, both conv engines.
final class GreedyPlanTests: XCTestCase {
    static let batch = 8

    static func images(_ spec: ModelSpec, batch: Int, ledger: Ledger) -> Tensor {
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: 9)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        return images
    }

    /// Round `round` on a fresh ledger: two steps (the first makes oneDNN's primitives).
    static func measure(_ spec: ModelSpec, round: Int, chunk: Int?, engine: ConvEngine, batch: Int = batch) -> LedgerSnapshot {
        let ledger = Ledger(eventCapacity: 1 << 10)
        let network = Network(spec: spec, seed: 5, ledger: ledger, engine: engine, schedule: .greedy)
        network.chunkSize = chunk
        network.beginRound(round)
        return ProofModel.peak(network, images(spec, batch: batch, ledger: ledger))
    }

    func check(_ spec: ModelSpec, round: Int, batch: Int = batch, chunk: Int?, engine: ConvEngine,
               file: StaticString = #filePath, line: UInt = #line) {
        let plan = MemoryPlanner.plan(ShapeTable(spec: spec, engine: engine), batchSize: batch, chunk: chunk, round: round)
        let measured = Self.measure(spec, round: round, chunk: chunk, engine: engine, batch: batch)
        let what = "\(spec.kind.rawValue) x\(spec.featMult) \(spec.loss.rawValue) round \(round) batch \(batch) chunk \(chunk.map(String.init) ?? "none") \(engine.rawValue)"
        XCTAssertEqual(plan.peak, measured.total, "\(what): predicted peak vs ledger", file: file, line: line)
        for c in Category.allCases {
            XCTAssertEqual(plan.peakBreakdown[c], measured.bytes(c), "\(what): \(c) at the peak", file: file, line: line)
        }
    }

    func testPlannerPredictsEveryMLPRoundWholeAndChunked() {
        for loss in [LossKind.predsim, .pred, .simBpf] {
            let spec = ProofModel.spec(loss)
            for round in 0..<3 {
                check(spec, round: round, chunk: nil, engine: .im2col)
                check(spec, round: round, chunk: 3, engine: .im2col)
            }
        }
    }

    func testPlannerPredictsReducedVGG8bRoundsUnderBothEngines() {
        for engine in ConvEngine.allCases {
            let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
            let rounds = ShapeTable(spec: spec).greedyRounds
            XCTAssertEqual(rounds, 7)  // six conv blocks and the Linear block
            // Winograd (every eligible pass: the measured policy picks nothing this narrow): a round
            // whose block runs it (block 2) and the last.
            WinogradConvolution.policy = engine == .winograd ? .everyEligiblePass : .measured
            defer { WinogradConvolution.policy = .measured }
            for round in engine == .winograd ? [2, rounds - 1] : [0, 1, 3, 5, rounds - 1] {
                check(spec, round: round, chunk: nil, engine: engine)
                check(spec, round: round, chunk: 3, engine: engine)
            }
        }
        // 20 images in micro-batches of 6, 6, 6, 2 through a frozen prefix of three conv blocks.
        check(ShapeTablePlanTests.convSpec(.vgg8b, .predsim, featMult: 1.0 / 16), round: 3, batch: 20, chunk: 6, engine: .im2col)
    }

    /// One network through all its rounds on one ledger: each round's peak (measured from the
    /// moment it starts) is that round's prediction, so the previous round's heads and
    /// optimizer state are gone and the frozen prefix is booked as frozen weights.
    func testRoundsReleaseTheirTrainingStateOnOneLedger() {
        for (spec, chunk) in [(ProofModel.spec(.predsim), nil as Int?), (ShapeTablePlanTests.convSpec(.vgg8b, .predsim), 3)] {
            let ledger = Ledger(eventCapacity: 1 << 10)
            let network = Network(spec: spec, seed: 5, ledger: ledger, engine: .im2col, schedule: .greedy)
            network.chunkSize = chunk
            let images = Self.images(spec, batch: Self.batch, ledger: ledger)
            let table = ShapeTable(spec: spec, engine: .im2col)
            var frozen = 0
            for round in 0..<table.greedyRounds {
                network.beginRound(round)
                XCTAssertEqual(network.optimizers.count, round == table.greedyRounds - 1 ? 2 : 1)
                ledger.resetPeaks()
                let peak = ProofModel.peak(network, images)
                let plan = MemoryPlanner.plan(table, batchSize: Self.batch, chunk: chunk, round: round)
                XCTAssertEqual(peak.total, plan.peak, "\(spec.kind) round \(round)")
                for c in Category.allCases {
                    XCTAssertEqual(peak.bytes(c), plan.peakBreakdown[c], "\(spec.kind) round \(round): \(c)")
                }
                XCTAssertEqual(ledger.current().bytes(.frozenWeights), frozen, "\(spec.kind) round \(round): frozen prefix")
                frozen += 4 * table.layers[round].weightElements
                XCTAssertEqual(ledger.current().bytes(.headWeights), 4 * table.layers[round].headElements)
            }
            XCTAssertTrue(ledger.violations.isEmpty, "\(ledger.violations)")
        }
    }

    /// The greedy round's peak is below the simultaneous step's for the default mlp shape,
    /// and the greedy schedule's peak is its largest round.
    func testGreedyPeakIsTheLargestRoundAndBelowSimultaneous() {
        var spec = ModelSpec()
        spec.inputShape = [1, 28, 28]
        spec.classes = 10
        let table = ShapeTable(spec: spec, engine: .im2col)
        let rounds = MemoryPlanner.greedyPlans(table, batchSize: 128)
        let largest = MemoryPlanner.greedyPeakPlan(table, batchSize: 128)
        XCTAssertEqual(largest.peak, rounds.map(\.peak).max())
        let simultaneous = MemoryPlanner.plan(table, batchSize: 128)
        var backprop = spec
        backprop.loss = .backprop
        backprop.nonlinearity = .relu
        let bp = MemoryPlanner.plan(backprop, batchSize: 128, engine: .im2col)
        XCTAssertLessThan(largest.peak, simultaneous.peak)
        XCTAssertLessThan(largest.peak, bp.peak, "greedy mlp 3x1024 predsim at batch 128 below backprop")
    }
}
