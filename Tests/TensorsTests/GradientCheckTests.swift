import NumericTestSupport
import XCTest

/// The checker itself: it must accept a right gradient and reject wrong ones, or every
/// gradient test built on it proves nothing.
final class GradientCheckTests: XCTestCase {
    // f(x) = sum_i sin(x_i) R_i, so df/dx_i = cos(x_i) R_i.
    private let x: [Double] = [0.3, -1.2, 0.7, 2.0, -0.4]
    private let r: [Double] = [0.9, -0.5, 1.3, 0.2, -1.1]
    private func f(_ v: [Double]) -> Double { zip(v, r).reduce(0) { $0 + sin($1.0) * $1.1 } }
    private var exact: [Double] { zip(x, r).map { cos($0) * $1 } }

    /// The finite-difference metric: at h = 1e-6, truncation h^2/6 max|R_i sin'''(x_i)| <= 2.2e-13
    /// and cancellation 10 u64 sum|R_i| / h <= 4.5e-9 (`FiniteDifference.bound`).
    private var finiteDifferenceBound: Double {
        FiniteDifference.bound(step: 1e-6, thirdDerivative: 1.3, terms: 10, absoluteSum: r.reduce(0) { $0 + abs($1) })
    }

    func testNumericalGradientMatchesTheExactGradient() {
        let numeric = numericalGradient(at: x, f)
        FiniteDifference.assertMatches(exact, numeric, bound: finiteDifferenceBound, "sin")
        assertGradientsMatch(exact, numeric, "sin")
    }

    /// The metric's bound is tight enough to catch a gradient off by a millionth of its scale.
    func testFiniteDifferenceBoundRejectsAPerturbationOfAMillionth() {
        let numeric = numericalGradient(at: x, f)
        var wrong = exact
        wrong[1] += 1e-6 * maxAbs(numeric)
        XCTAssertNotNil(gradientMismatch(analytic: wrong, numeric: numeric, relativeTolerance: 0, absoluteTolerance: finiteDifferenceBound))
    }

    func testCheckerRejectsAGradientPerturbedByATenthOfAPercent() {
        let numeric = numericalGradient(at: x, f)
        var wrong = exact
        wrong[2] += 1e-3 * maxAbs(numeric)
        XCTAssertNotNil(gradientMismatch(analytic: wrong, numeric: numeric, relativeTolerance: 1e-4, absoluteTolerance: 1e-7))
        assertMutationDetected(exact, numeric, "sin")
    }

    func testCheckerRejectsASignErrorAndAMissingTerm() {
        let numeric = numericalGradient(at: x, f)
        var signError = exact
        signError[4] = -signError[4]
        XCTAssertNotNil(gradientMismatch(analytic: signError, numeric: numeric, relativeTolerance: 1e-4, absoluteTolerance: 1e-7))
        // d/dx of sin(x) R + x^2 / 2 without the x term.
        let withTerm = numericalGradient(at: x) { v in self.f(v) + v.reduce(0) { $0 + $1 * $1 / 2 } }
        XCTAssertNotNil(gradientMismatch(analytic: exact, numeric: withTerm, relativeTolerance: 1e-4, absoluteTolerance: 1e-7))
    }

    func testCheckerRejectsNonFiniteGradients() {
        var bad = exact
        bad[0] = .nan
        XCTAssertNotNil(gradientMismatch(analytic: bad, numeric: exact, relativeTolerance: 1, absoluteTolerance: 1))
    }
}
