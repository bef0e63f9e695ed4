import NumericTestSupport
import Tensors
import XCTest

/// ReLU and LeakyReLU: the positive side is passed through exactly, the negative side is one
/// correctly rounded product with the Float32 slope (bound u |result|, `Rounded`).
final class NonlinearityTests: XCTestCase {
    func testSlopes() {
        XCTAssertEqual(Nonlinearity.relu.negativeSlope, 0)
        XCTAssertEqual(Nonlinearity.leakyRelu.negativeSlope, 0.01)
    }

    /// f(x) = x for x > 0, slope x otherwise, with the kernel's slope.
    private func model(_ x: [Double], _ f: Nonlinearity) -> [Rounded] {
        let slope = Rounded(exact: Double(f.negativeSlope))
        return x.map { $0 > 0 ? Rounded(exact: $0) : slope * Rounded(exact: $0) }
    }

    func testForwardMatchesReference() {
        var random = TestRandom(seed: 61)
        let x = random.uniform(4 * 5, -2, 2) + [0]
        for f in Nonlinearity.allCases {
            let t = makeTensor([x.count], x)
            f.forward(t)
            let expected = model(x, f)
            XCTAssertNil(RoundingBound.violation(Reference.leakyRelu(x, slope: Double(f.negativeSlope)), expected.map { Rounded(exact: $0.exact, error: 0) }))
            assertWithinBound(t.doubles, expected, "\(f)")
        }
        // Broken variant: the slope applied on the positive side instead of the negative one.
        let positiveSlope = x.map { $0 > 0 ? 0.01 * $0 : $0 }
        assertBoundCatches(positiveSlope, model(x, .leakyRelu), "LeakyReLU with its sides swapped")
    }

    /// L = sum(f(x) * R), x kept at least 0.3 away from the kink: dL/dx = R f'(x), f' = 1 or
    /// the slope (a piecewise-linear function: its derivative away from the kink is exact,
    /// so the kernel is compared with it directly).
    func testBackwardMatchesFiniteDifferences() {
        var random = TestRandom(seed: 62)
        let x = random.awayFromZero(4 * 5, margin: 0.3), r = random.uniform(4 * 5)
        XCTAssertTrue(x.contains { $0 < 0 } && x.contains { $0 > 0 })
        for f in Nonlinearity.allCases {
            let y = makeTensor([4, 5], x)
            f.forward(y)
            let grad = makeTensor([4, 5], r)
            f.backward(output: y, grad: grad)
            let slope = Rounded(exact: Double(f.negativeSlope))
            let expected = zip(x, r).map { $0 > 0 ? Rounded(exact: $1) : slope * Rounded(exact: $1) }
            assertWithinBound(grad.doubles, expected, "\(f)")
            // The derivative against central differences of the Float64 function (step 0.125,
            // smaller than the 0.3 margin: linear there, no truncation error).
            let numeric = numericalGradient(at: x, step: 0.125) { dot(Reference.leakyRelu($0, slope: Double(f.negativeSlope)), r) }
            FiniteDifference.assertMatches(expected.map(\.exact), numeric,
                                           bound: FiniteDifference.bound(step: 0.125, thirdDerivative: 0, terms: 2 * x.count, absoluteSum: 40), "\(f) derivative")
            // Broken variant: the mask read from the input shifted by one element.
            let shifted = r.indices.map { i in x[(i + 1) % x.count] > 0 ? r[i] : Double(f.negativeSlope) * r[i] }
            assertBoundCatches(shifted, expected, "\(f) backward with the mask one element off")
        }
    }
}
