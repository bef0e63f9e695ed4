import Layers
import XCTest
@testable import Training

final class MemoryBudgetTests: XCTestCase {
    /// The MLP with predsim heads needs more than backprop: a budget between the two refuses
    /// local with the numbers and names backprop (and the lighter local losses) as fitting.
    func testBudgetRefusesWithTheNumbersAndNamesTheModesThatFit() throws {
        let spec = ModelSpec()  // mlp 3x1024 predsim
        let local = MemoryPlanner.plan(spec, batchSize: 128)
        var backpropSpec = spec
        backpropSpec.loss = .backprop
        let backprop = MemoryPlanner.plan(backpropSpec, batchSize: 128)
        XCTAssertGreaterThan(local.peak, backprop.peak, "predsim heads outweigh the activations on the mlp")
        let budget = (local.peak + backprop.peak) / 2
        XCTAssertNoThrow(try MemoryBudget.check(backpropSpec, batchSize: 128, optimizer: OptimizerSettings(), budget: budget))
        XCTAssertThrowsError(try MemoryBudget.check(spec, batchSize: 128, optimizer: OptimizerSettings(), budget: budget)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("83,591,688"), message)       // the prediction, exact
            XCTAssertTrue(message.contains("backprop"), message)         // which mode fits
            XCTAssertTrue(message.contains("--memory-budget"), message)
        }
    }
}
