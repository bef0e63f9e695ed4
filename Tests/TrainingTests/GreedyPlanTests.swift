import Layers
import MemoryLedger
import Randomness
import Shards
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
        for engine in ConvEngine.available {
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

    /// Round `round` reading its prefix's output from a hand-off cache (`trainStep(handOffs:)`,
    /// the hand-offs booked as the input batch, as the planner books them).
    static func measureCached(_ spec: ModelSpec, round: Int, chunk: Int?, engine: ConvEngine, batch: Int = batch) -> LedgerSnapshot {
        let ledger = Ledger(eventCapacity: 1 << 10)
        let network = Network(spec: spec, seed: 5, ledger: ledger, engine: engine, schedule: .greedy)
        network.chunkSize = chunk
        network.beginRound(round)
        let handOffs = Tensor([batch] + network.handOffShape(ofBlock: round - 1), .input, label: "handoffs", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: 9)
        for i in 0..<handOffs.count { handOffs.pointer[i] = rng.uniform(-1, 1) }
        let labels = ProofModel.labels(batch)
        for step in 0..<2 {
            _ = labels.withUnsafeBufferPointer { network.trainStep(handOffs: handOffs, labels: $0.baseAddress!, lr: 1e-3, step: step) }
        }
        return ledger.peak()
    }

    func checkCached(_ spec: ModelSpec, round: Int, batch: Int = batch, chunk: Int?, engine: ConvEngine,
                     file: StaticString = #filePath, line: UInt = #line) {
        let plan = MemoryPlanner.plan(ShapeTable(spec: spec, engine: engine), batchSize: batch, chunk: chunk, round: round, cached: true)
        let measured = Self.measureCached(spec, round: round, chunk: chunk, engine: engine, batch: batch)
        let what = "\(spec.kind.rawValue) \(spec.loss.rawValue) cached round \(round) batch \(batch) chunk \(chunk.map(String.init) ?? "none") \(engine.rawValue)"
        XCTAssertEqual(plan.peak, measured.total, "\(what): predicted peak vs ledger", file: file, line: line)
        for c in Category.allCases {
            XCTAssertEqual(plan.peakBreakdown[c], measured.bytes(c), "\(what): \(c) at the peak", file: file, line: line)
        }
        XCTAssertEqual(plan.persistent[.input], 4 * batch * ShapeTable(spec: spec).hiddenLayers[round - 1].handOffCount, what, file: file, line: line)
    }

    func testPlannerPredictsCachedRoundsByteForByte() {
        for loss in [LossKind.predsim, .pred] {
            let spec = ProofModel.spec(loss)
            for round in 1..<3 {
                checkCached(spec, round: round, chunk: nil, engine: .im2col)
                checkCached(spec, round: round, chunk: 3, engine: .im2col)
            }
        }
        for engine in ConvEngine.available {
            let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
            for round in [1, 2, 4, 6] {
                checkCached(spec, round: round, chunk: nil, engine: engine)
                checkCached(spec, round: round, chunk: 3, engine: engine)
            }
        }
        // A cached step needs no prefix activations: below the recomputing step's peak.
        let spec = ShapeTablePlanTests.convSpec(.vgg8b, .predsim)
        let table = ShapeTable(spec: spec, engine: .im2col)
        let cached = MemoryPlanner.plan(table, batchSize: Self.batch, round: 3, cached: true)
        let recomputed = MemoryPlanner.plan(table, batchSize: Self.batch, round: 3)
        XCTAssertLessThan(cached.peak - cached.persistent[.input], recomputed.peak - recomputed.persistent[.input])
    }

    /// The budget chooser: under a disk budget too small for a round's cache that round runs
    /// its prefix; every round's choice is the plan of its settings; and a train budget too
    /// small for any setting names the round.
    func testGreedyBudgetChoosesCacheOrRecomputePerRound() throws {
        var spec = ModelSpec()
        spec.inputShape = [1, 28, 28]
        spec.classes = 10
        let table = ShapeTable(spec: spec)
        let cache = HandOffCacheOption(records: 60_000)
        let free = try MemoryBudget.chooseGreedy(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: nil, diskBudget: nil,
                                                 cache: cache, overhead: .train)
        XCTAssertEqual(free.cachedRounds, [1, 2])
        XCTAssertEqual(free.roundChunks, [nil, nil, nil])
        // mlp 3x1024: a record is 1024 fp32 values and a label.
        XCTAssertEqual(table.handOffCacheRecordBytes(round: 1, valueBytes: 4), 4100)
        XCTAssertGreaterThan(cache.diskBytes(table, round: 1), 60_000 * 4100)
        XCTAssertLessThan(cache.diskBytes(table, round: 1), 60_000 * 4200)
        let tight = try MemoryBudget.chooseGreedy(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: nil,
                                                  diskBudget: 200_000_000, cache: cache, overhead: .train)
        XCTAssertEqual(tight.cachedRounds, [], "a 246 MB cache is over a 200 MB disk budget")
        XCTAssertTrue(tight.description[2].contains("is over --disk-budget"), tight.description[2])
        for r in free.rounds {
            XCTAssertEqual(r.plan, MemoryPlanner.plan(table, batchSize: 128, chunk: r.plan.chunk, round: r.round, cached: r.cached))
        }
        // The last round (heads of 1024 units, the output layer's optimizer) is the largest and
        // chunks do not make it smaller: at its peak plus the overhead everything fits as
        // without a budget; one byte less, it is named.
        let largest = free.largest
        XCTAssertEqual(largest.round, 2)
        let exact = try MemoryBudget.chooseGreedy(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: largest.plan.peak + ProcessOverhead.train.bytes,
                                                  diskBudget: nil, cache: cache, overhead: .train)
        XCTAssertEqual(exact.rounds, free.rounds)
        XCTAssertThrowsError(try MemoryBudget.chooseGreedy(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: largest.plan.peak + ProcessOverhead.train.bytes - 1,
                                                           diskBudget: nil, cache: cache, overhead: .train)) {
            XCTAssertTrue("\($0)".hasPrefix("greedy round 3 of 3 fits no setting"), "\($0)")
        }
        // Without a cache round 2 runs its prefix: a larger peak than reading the cache.
        let recompute = try MemoryBudget.chooseGreedy(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: nil, diskBudget: nil,
                                                      cache: nil, overhead: .train)
        XCTAssertEqual(recompute.cachedRounds, [])
        XCTAssertGreaterThan(recompute.rounds[1].plan.peak - recompute.rounds[1].plan.persistent[.input],
                             free.rounds[1].plan.peak - free.rounds[1].plan.persistent[.input])
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
