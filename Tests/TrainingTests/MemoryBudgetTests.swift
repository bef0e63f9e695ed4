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
}
