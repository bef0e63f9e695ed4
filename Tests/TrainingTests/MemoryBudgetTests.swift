import Layers
import XCTest
@testable import Training

final class MemoryBudgetTests: XCTestCase {
    func testSizesParseWithBinaryAndDecimalUnits() {
        XCTAssertEqual(MemoryBudget.parse("256MiB"), 256 << 20)
        XCTAssertEqual(MemoryBudget.parse("1.5GiB"), 3 << 29)
        XCTAssertEqual(MemoryBudget.parse("300MB"), 300_000_000)
        XCTAssertEqual(MemoryBudget.parse("64k"), 65_536)
        XCTAssertEqual(MemoryBudget.parse("4096"), 4096)
        XCTAssertNil(MemoryBudget.parse("lots"))
        XCTAssertNil(MemoryBudget.parse("12 parsecs"))
    }

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
