import XCTest

/// Central finite differences of a scalar function: g_i = (f(x + h e_i) - f(x - h e_i)) / 2h.
/// `f` is evaluated in Double; give it either a Float64 reference of the function under test
/// (then h ~ 1e-6) or a wrapper around the Float32 kernel itself (then h ~ 1e-2..0.25, only
/// for functions that are linear or piecewise linear away from their kinks).
public func numericalGradient(at x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        let v = x[i]
        x[i] = v + h
        let plus = f(x)
        x[i] = v - h
        let minus = f(x)
        x[i] = v
        g[i] = (plus - minus) / (2 * h)
    }
    return g
}

/// Why `analytic` does not match `numeric`, or nil when it does: every element must satisfy
/// |a_i - n_i| <= relativeTolerance * max_j |n_j| + absoluteTolerance.
/// The bound is relative to the largest entry, so a sign error or a missing term in any entry
/// of a gradient that is not vanishingly small fails it.
public func gradientMismatch(analytic: [Double], numeric: [Double], relativeTolerance: Double,
                             absoluteTolerance: Double) -> String? {
    guard analytic.count == numeric.count else {
        return "sizes differ: analytic \(analytic.count), numeric \(numeric.count)"
    }
    guard analytic.allSatisfy(\.isFinite) else { return "analytic gradient is not finite: \(analytic)" }
    let bound = relativeTolerance * maxAbs(numeric) + absoluteTolerance
    var worst = 0, worstError = -1.0
    for i in analytic.indices {
        let e = abs(analytic[i] - numeric[i])
        if e > worstError { worst = i; worstError = e }
    }
    if worstError <= bound { return nil }
    return "element \(worst): analytic \(analytic[worst]) vs numeric \(numeric[worst]) "
        + "(error \(worstError) > bound \(bound); max |numeric| \(maxAbs(numeric)))"
}

/// Asserts that the analytic gradient matches finite differences and that the comparison is not
/// vacuous: the numeric gradient's norm must be at least `minimumNorm`.
public func assertGradientsMatch(_ analytic: [Double], _ numeric: [Double], _ what: String,
                                 relativeTolerance: Double = 1e-4, absoluteTolerance: Double = 1e-7,
                                 minimumNorm: Double = 1e-3, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertGreaterThanOrEqual(norm(numeric), minimumNorm,
                                "\(what): the gradient is (nearly) zero, the check would pass vacuously", file: file, line: line)
    if let why = gradientMismatch(analytic: analytic, numeric: numeric, relativeTolerance: relativeTolerance,
                                  absoluteTolerance: absoluteTolerance) {
        XCTFail("\(what): \(why)", file: file, line: line)
    }
}

/// Asserts |actual_i - expected_i| <= tolerance * max(1, |expected_i|) for every element.
public func assertClose(_ actual: [Double], _ expected: [Double], tolerance: Double, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(what): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return
    }
    for i in actual.indices where !(abs(actual[i] - expected[i]) <= tolerance * max(1, abs(expected[i]))) {
        XCTFail("\(what): element \(i) is \(actual[i]), expected \(expected[i]) (tolerance \(tolerance))", file: file, line: line)
        return
    }
}

public func assertClose(_ actual: Double, _ expected: Double, tolerance: Double, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    assertClose([actual], [expected], tolerance: tolerance, what, file: file, line: line)
}

/// The mutation check: a copy of `analytic` with its largest entry moved by `fraction` of the
/// largest numeric entry (10x the default tolerance) must fail the comparison, and so must the
/// negated gradient. This shows the tolerance is tight enough to catch a wrong gradient.
public func assertMutationDetected(_ analytic: [Double], _ numeric: [Double], _ what: String,
                                   fraction: Double = 1e-3, relativeTolerance: Double = 1e-4,
                                   absoluteTolerance: Double = 1e-7, file: StaticString = #filePath, line: UInt = #line) {
    guard let i = analytic.indices.max(by: { abs(analytic[$0]) < abs(analytic[$1]) }) else { return }
    var mutated = analytic
    mutated[i] += fraction * maxAbs(numeric)
    XCTAssertNotNil(gradientMismatch(analytic: mutated, numeric: numeric, relativeTolerance: relativeTolerance,
                                     absoluteTolerance: absoluteTolerance),
                    "\(what): a gradient perturbed by \(fraction) of its scale still passes", file: file, line: line)
    XCTAssertNotNil(gradientMismatch(analytic: analytic.map { -$0 }, numeric: numeric, relativeTolerance: relativeTolerance,
                                     absoluteTolerance: absoluteTolerance),
                    "\(what): the negated gradient still passes", file: file, line: line)
}

/// The error of central differences of a Float64 function, the metric of a finite-difference
/// gradient check: |(f(x + h) - f(x - h)) / 2h - f'(x)| <= h^2 / 6 max|f'''| (truncation,
/// Taylor's theorem) + 2 e_f / 2h, where e_f <= terms u64 sum|terms of f| is the rounding error
/// of one Float64 evaluation (cancellation). At h = 1e-6 both are near 1e-10 for O(1) data; a
/// Float32 result cannot be checked against it at that level, so checks with this bound compare
/// Float64 gradient formulas with finite differences, and the Float32 kernel with the formula
/// within its rounding bound (`Rounded`).
public enum FiniteDifference {
    public static let unitRoundoff64 = 0x1p-53

    /// The bound above for step h, a bound on |f'''| near x, and one evaluation's `terms` and
    /// sum of |terms|.
    public static func bound(step h: Double, thirdDerivative: Double, terms: Int, absoluteSum: Double) -> Double {
        h * h / 6 * thirdDerivative + Double(terms) * unitRoundoff64 * absoluteSum / h
    }

    /// Asserts |analytic_i - numeric_i| <= `bound` for every i, that the gradient is not (nearly)
    /// zero (at least 1000 bounds), so that the check is not vacuous.
    public static func assertMatches(_ analytic: [Double], _ numeric: [Double], bound: Double, _ what: String,
                                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertGreaterThan(maxAbs(numeric), 1000 * bound, "\(what): the gradient is (nearly) zero at this bound", file: file, line: line)
        if let why = gradientMismatch(analytic: analytic, numeric: numeric, relativeTolerance: 0, absoluteTolerance: bound) {
            XCTFail("\(what): \(why)", file: file, line: line)
        }
    }
}
