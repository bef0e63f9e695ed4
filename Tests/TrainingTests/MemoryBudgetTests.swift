import Layers
import XCTest
@testable import Training

final class MemoryBudgetTests: XCTestCase {
    /// The mlp with predsim heads needs more than backprop, and its weights, heads and Adam state
    /// alone are above backprop's whole peak: no chunk size brings local under a budget between
    /// the two, and the refusal says so with the numbers. Backprop under the same budget passes.
    func testBudgetRefusesWithTheSmallestPeakAndWhatDominatesIt() throws {
        let spec = ModelSpec()  // mlp 3x1024 predsim
        let local = MemoryPlanner.plan(spec, batchSize: 128)
        var backpropSpec = spec
        backpropSpec.loss = .backprop
        let backprop = MemoryPlanner.plan(backpropSpec, batchSize: 128)
        XCTAssertGreaterThan(local.peak, backprop.peak, "predsim heads outweigh the activations on the mlp")
        let overhead = ProcessOverhead(bytes: 0, what: "of nothing")
        let budget = (local.peak + backprop.peak) / 2
        XCTAssertNil(try MemoryBudget.choose(backpropSpec, batchSize: 128, optimizer: OptimizerSettings(), budget: budget, overhead: overhead).plan.chunk)
        let fixed = local.persistent[.weights] + local.persistent[.headWeights] + local.persistent[.optimizerState]
        XCTAssertGreaterThan(fixed, budget)
        XCTAssertThrowsError(try MemoryBudget.choose(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: budget, overhead: overhead)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("Weights, heads and Adam state are"), message)
            XCTAssertTrue(message.contains("no chunk size goes below"), message)
            XCTAssertTrue(message.contains("--memory-budget"), message)
        }
    }

    /// The overhead counts: a budget that fits the ledger peak alone is refused once the
    /// command's process overhead is added, and the plan's total is peak plus overhead.
    func testProcessOverheadIsAddedToThePrediction() throws {
        var spec = ModelSpec()
        spec.loss = .backprop
        let peak = MemoryPlanner.plan(spec, batchSize: 64).peak
        let overhead = ProcessOverhead(bytes: 10 << 20, what: "of test overhead")
        let fits = try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), budget: peak + (10 << 20), overhead: overhead)
        XCTAssertEqual(fits.total, peak + (10 << 20))
        XCTAssertThrowsError(try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), budget: peak + (10 << 20) - 1, overhead: overhead))
    }

    /// `--allow-lean-state`: the mlp's predsim state does not fit a budget in fp32 at any chunk
    /// size, so the planner takes bf16 moments at whole batches where they fit (bf16 before int8
    /// at the same FLOPs), int8 one byte below that; without the flag it refuses and names it.
    func testLeanStateIsChosenOnlyWhenAllowedAndTheLeastLeanThatFits() throws {
        let spec = ModelSpec()  // mlp 3x1024 predsim
        let overhead = ProcessOverhead(bytes: 0, what: "of nothing")
        func plan(_ format: OptimizerStateFormat, chunk: Int? = nil) -> MemoryPlan {
            var o = OptimizerSettings()
            o.stateFormat = format
            return MemoryPlanner.plan(ShapeTable(spec: spec), batchSize: 128, chunk: chunk, optimizer: o)
        }
        let bf16 = plan(.bf16).peak
        XCTAssertLessThan(plan(.int8).peak, bf16)
        XCTAssertGreaterThan(plan(.fp32, chunk: 1).peak, bf16, "fp32 fits by chunking: the budget below tests nothing")
        let chosen = try MemoryBudget.choose(spec, batchSize: 128, optimizer: OptimizerSettings(), allowLeanState: true, budget: bf16, overhead: overhead)
        XCTAssertEqual(chosen.optimizer.stateFormat, .bf16)
        XCTAssertNil(chosen.plan.chunk)
        XCTAssertEqual(chosen.plan.peak, bf16)
        XCTAssertTrue(chosen.description.contains { $0.contains("optimizer state bf16 (--allow-lean-state)") }, "\(chosen.description)")
        let tighter = try MemoryBudget.choose(spec, batchSize: 128, optimizer: OptimizerSettings(), allowLeanState: true, budget: bf16 - 1, overhead: overhead)
        XCTAssertEqual(tighter.optimizer.stateFormat, .int8)
        XCTAssertNil(tighter.plan.chunk)
        XCTAssertThrowsError(try MemoryBudget.choose(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: bf16, overhead: overhead)) {
            XCTAssertTrue("\($0)".contains("--allow-lean-state"), "\($0)")
        }
        // A budget the asked-for format fits keeps it.
        let roomy = try MemoryBudget.choose(spec, batchSize: 128, optimizer: OptimizerSettings(), allowLeanState: true,
                                            budget: plan(.fp32).peak, overhead: overhead)
        XCTAssertEqual(roomy.optimizer.stateFormat, .fp32)
        XCTAssertFalse(roomy.description.contains { $0.contains("--allow-lean-state") })
    }

    /// `--sim-output`: vgg8b's predsim sim heads keep their output when the kept plan fits
    /// (fewest FLOPs), recompute it one byte below that, and chunk below the recomputing plan;
    /// a choice given is kept (recompute never keeps; keep that does not fit falls to chunks,
    /// which recompute); a model without a conv sim head (the mlp) never keeps.
    func testSimOutputIsKeptWhenItFitsAndRecomputedBelow() throws {
        var spec = ModelSpec()
        spec.kind = .vgg8b
        spec.featMult = 0.25
        spec.inputShape = [1, 28, 28]
        spec.winograd = false  // under a forced Winograd engine the planner would give that up first (tested below)
        let overhead = ProcessOverhead(bytes: 0, what: "of nothing")
        func peak(keep: Bool, chunk: Int? = nil) -> Int {
            var t = ShapeTable(spec: spec)
            t.keepsSimOutput = keep
            return MemoryPlanner.plan(t, batchSize: 64, chunk: chunk, optimizer: OptimizerSettings()).peak
        }
        let kept = peak(keep: true), recomputed = peak(keep: false)
        XCTAssertGreaterThan(kept, recomputed)
        XCTAssertEqual(peak(keep: true, chunk: 16), peak(keep: false, chunk: 16), "chunked steps recompute either way")
        func choose(_ budget: Int, _ simOutput: SimOutput? = nil) throws -> BudgetPlan {
            try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), simOutput: simOutput, budget: budget, overhead: overhead)
        }
        let roomy = try choose(kept)
        XCTAssertTrue(roomy.keepsSimOutput)
        XCTAssertNil(roomy.plan.chunk)
        XCTAssertEqual(roomy.plan.peak, kept)
        XCTAssertLessThan(roomy.slowdown, 1, "keeping saves FLOPs")
        XCTAssertTrue(roomy.description.contains { $0.contains("--sim-output keep") }, "\(roomy.description)")
        let tighter = try choose(kept - 1)
        XCTAssertFalse(tighter.keepsSimOutput)
        XCTAssertNil(tighter.plan.chunk)
        XCTAssertEqual(tighter.plan.peak, recomputed)
        let chunked = try choose(recomputed - 1)
        XCTAssertNotNil(chunked.plan.chunk)
        XCTAssertFalse(chunked.keepsSimOutput)
        XCTAssertFalse(try choose(kept, .recompute).keepsSimOutput)
        let asked = try choose(kept - 1, .keep)
        XCTAssertFalse(asked.keepsSimOutput)
        XCTAssertNotNil(asked.plan.chunk, "keep asked for but not fitting: chunks, which recompute")
        XCTAssertFalse(try MemoryBudget.choose(ModelSpec(), batchSize: 64, optimizer: OptimizerSettings(), simOutput: .keep,
                                               budget: 1 << 40, overhead: overhead).keepsSimOutput, "the mlp has no conv sim head")
    }

    /// Winograd's scratch is given up before whole batches: on vgg8b x0.25 (batch 64, oneDNN
    /// Winograd engine, s recomputed) a budget between the direct plan's peak and the Winograd
    /// plan's keeps whole batches with direct convolutions and says so; a budget that fits
    /// Winograd keeps it; a spec that rules Winograd out is never planned with it. Where oneDNN
    /// has no Winograd (CPUs without AVX-512) the two plans are the same bytes and Winograd is
    /// kept.
    func testWinogradScratchIsGivenUpBeforeWholeBatches() throws {
        let spec = ModelSpec.vgg(.vgg8b, featMult: 0.25)
        let overhead = ProcessOverhead(bytes: 0, what: "of nothing")
        var direct = spec
        direct.winograd = false
        XCTAssertEqual(ShapeTable(spec: direct, engine: .dnnlWinograd).engine, .dnnl)
        let withWinograd = MemoryPlanner.plan(ShapeTable(spec: spec, engine: .dnnlWinograd), batchSize: 64).peak
        let withoutWinograd = MemoryPlanner.plan(ShapeTable(spec: direct, engine: .dnnlWinograd), batchSize: 64).peak
        let roomy = try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), simOutput: .recompute,
                                            engine: .dnnlWinograd, budget: withWinograd, overhead: overhead)
        XCTAssertTrue(roomy.winograd)
        XCTAssertNil(roomy.plan.chunk)
        XCTAssertEqual(roomy.plan.peak, withWinograd)
        guard withWinograd > withoutWinograd else {
            print("oneDNN has no Winograd here: both plans \(withWinograd) bytes")
            return
        }
        let tight = try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), simOutput: .recompute,
                                            engine: .dnnlWinograd, budget: withWinograd - 1, overhead: overhead)
        XCTAssertFalse(tight.winograd)
        XCTAssertTrue(tight.gaveUpWinograd)
        XCTAssertNil(tight.plan.chunk, "whole batches with direct convolutions fit")
        XCTAssertEqual(tight.plan.peak, withoutWinograd)
        XCTAssertTrue(tight.description.contains { $0.contains("convolutions direct (oneDNN)") }, "\(tight.description)")
        let ruledOut = try MemoryBudget.choose(direct, batchSize: 64, optimizer: OptimizerSettings(), simOutput: .recompute,
                                               engine: .dnnlWinograd, budget: withWinograd, overhead: overhead)
        XCTAssertFalse(ruledOut.winograd)
        XCTAssertFalse(ruledOut.gaveUpWinograd, "the spec ruled it out; the planner gave nothing up")
        // With s free to be kept: Winograd recomputing s comes before direct keeping it.
        let free = try MemoryBudget.choose(spec, batchSize: 64, optimizer: OptimizerSettings(), engine: .dnnlWinograd,
                                           budget: withWinograd, overhead: overhead)
        XCTAssertTrue(free.winograd)
        XCTAssertFalse(free.keepsSimOutput, "keeping s with Winograd needs more than the budget")
    }
}
