import Layers
import XCTest

final class ModelSpecTests: XCTestCase {
    /// mlp 3 x 1024 on 28x28x1, 10 classes: 3 x (Linear + BN) + output, heads not counted.
    func testMlpParameterCountMatchesThePaper() {
        var spec = ModelSpec()
        spec.inputShape = [1, 28, 28]
        spec.classes = 10
        spec.numLayers = 3
        spec.numHidden = 1024
        // (784 * 1024 + 1024 + 2 * 1024) + 2 * (1024 * 1024 + 1024 + 2 * 1024) + (1024 * 10 + 10)
        XCTAssertEqual(spec.parameterCount, 2_919_434)
        XCTAssertEqual(spec.parameterCount, 805_888 + 2 * 1_051_648 + 10_250)
    }

    /// predsim heads: pred (1024 * 10 + 10) and sim (1024 * 1024) per block, about 3.1M in all.
    func testPredsimHeadParameterCount() {
        var spec = ModelSpec()
        spec.loss = .predsim
        XCTAssertEqual(spec.headParameterCount, 3 * (10_250 + 1_048_576))
        spec.loss = .backprop
        XCTAssertEqual(spec.headParameterCount, 0)
    }
}
