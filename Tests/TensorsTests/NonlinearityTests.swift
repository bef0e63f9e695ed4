import NumericTestSupport
import Tensors
import XCTest

final class NonlinearityTests: XCTestCase {
    func testSlopes() {
        XCTAssertEqual(Nonlinearity.relu.negativeSlope, 0)
        XCTAssertEqual(Nonlinearity.leakyRelu.negativeSlope, 0.01)
    }

    func testForwardMatchesReference() {
        var random = TestRandom(seed: 61)
        let x = random.uniform(4 * 5, -2, 2) + [0]
        for (f, slope) in [(Nonlinearity.relu, 0.0), (.leakyRelu, 0.01)] {
            let t = makeTensor([x.count], x)
            f.forward(t)
            assertClose(t.doubles, Reference.leakyRelu(x, slope: slope), tolerance: 1e-7, "\(f)")
        }
    }

    /// L = sum(f(x) * R), x kept at least 0.3 away from the kink, step 0.125: f is linear there.
    func testBackwardMatchesFiniteDifferences() {
        var random = TestRandom(seed: 62)
        let x = random.awayFromZero(4 * 5, margin: 0.3), r = random.uniform(4 * 5)
        XCTAssertTrue(x.contains { $0 < 0 } && x.contains { $0 > 0 })
        for f in Nonlinearity.allCases {
            func loss(_ v: [Double]) -> Double {
                let t = makeTensor([4, 5], v)
                f.forward(t)
                return dot(t.doubles, r)
            }
            let y = makeTensor([4, 5], x)
            f.forward(y)
            let grad = makeTensor([4, 5], r)
            f.backward(output: y, grad: grad)
            let numeric = numericalGradient(at: x, step: 0.125, loss)
            assertGradientsMatch(grad.doubles, numeric, "\(f)")
            assertMutationDetected(grad.doubles, numeric, "\(f)")
        }
    }
}
