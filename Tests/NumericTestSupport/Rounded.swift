import Foundation
import XCTest

/// A Float32 kernel's result modelled in Float64: the exact value of the formula and a bound on
/// how far a Float32 evaluation of it may be, built up operation by operation in the kernel's
/// order of operations (sums in any order) (running error analysis, Higham, "Accuracy and Stability of Numerical
/// Algorithms", 2nd ed., section 3.3).
///
/// The rules:
/// - Inputs are Float32 values, exact (`Rounded(exact:)`).
/// - +, -, *, / and square root are correctly rounded in IEEE arithmetic: each adds at most
///   u |computed result| to the error propagated from its operands (u = 2^-24). Propagation is
///   exact, not first order: |a'b' - ab| <= |a| e_b + |b| e_a + e_a e_b,
///   |a'/b' - a/b| <= (|a| e_b + |b| e_a) / (|b| (|b| - e_b)), |sqrt a' - sqrt a| <= min(e_a / sqrt a, sqrt e_a).
/// - A sum of K terms in any order, blocking or thread split uses the probabilistic
///   gammaTilde_K(lambda) of `RoundingBound` on the sum of the computed terms' magnitudes, plus
///   the terms' own errors. `dot` treats K products the same way (Higham-Mary, Theorem 3.1 holds
///   for inner products: the K product roundings are among the K errors). These hold with the
///   probability stated in `RoundingBound` (a failure from honest rounding below 1e-10).
/// - A result below Float's smallest normal (2^-126) may be 0: its bound is its magnitude.
/// - exp and log of a Float are evaluated in Double and rounded to Float by the kernels. glibc
///   keeps them within a few ulp of Double (glibc manual, "Known Maximum Errors in Math
///   Functions"); even 2^10 ulps of Double are 2^-42 relative, so the Float result is within
///   u (1 + 2^-18) |result|. `libmRounding` allows 2u.
///
/// The bound holds for every BLAS kernel, oneDNN ISA and thread count: it depends on the values
/// and the lengths of the sums only. The Float64 evaluation of the model rounds at 2^-53 per
/// operation, 2^29 times finer than the Float32 roundings it bounds.
public struct Rounded: CustomStringConvertible {
    /// The exact value (Float64 evaluation of the formula on the Float32 inputs).
    public var exact: Double
    /// A bound on |computed - exact| for the Float32 computation.
    public var error: Double

    public init(exact: Double, error: Double = 0) {
        self.exact = exact
        self.error = error
    }

    public static let u = RoundingBound.unitRoundoff
    /// exp and log rounded to Float from Double (see above).
    public static let libmRounding = 2 * u

    public var description: String { "\(exact) +- \(error)" }

    /// The largest magnitude the computed value can have.
    public var magnitude: Double { abs(exact) + error }

    /// One correctly rounded Float32 operation producing `exact` from operands whose errors
    /// propagate to `propagated`.
    static func rounded(_ exact: Double, propagated: Double, unitRoundoffs: Double = 1) -> Rounded {
        let magnitude = abs(exact) + propagated
        // Below Float's normal range the relative rule fails: such a result may come out as 0
        // (flushed, or its divisor overflowed to infinity), so its bound is its magnitude.
        if magnitude < smallestNormal { return Rounded(exact: exact, error: max(magnitude, propagated)) }
        return Rounded(exact: exact, error: propagated + unitRoundoffs * u * magnitude)
    }

    /// Float's smallest normal magnitude, 2^-126.
    public static let smallestNormal = 0x1p-126

    public static func + (a: Rounded, b: Rounded) -> Rounded { rounded(a.exact + b.exact, propagated: a.error + b.error) }
    public static func - (a: Rounded, b: Rounded) -> Rounded { rounded(a.exact - b.exact, propagated: a.error + b.error) }
    public static prefix func - (a: Rounded) -> Rounded { Rounded(exact: -a.exact, error: a.error) }

    public static func * (a: Rounded, b: Rounded) -> Rounded {
        rounded(a.exact * b.exact, propagated: abs(a.exact) * b.error + abs(b.exact) * a.error + a.error * b.error)
    }

    public static func / (a: Rounded, b: Rounded) -> Rounded {
        precondition(b.error < abs(b.exact), "dividing by \(b): the divisor's error bound reaches zero")
        let propagated = (abs(a.exact) * b.error + abs(b.exact) * a.error) / (abs(b.exact) * (abs(b.exact) - b.error))
        return rounded(a.exact / b.exact, propagated: propagated)
    }

    /// A value computed exactly from exact operands, then rounded once to Float32.
    public static func roundedOnce(_ exact: Double) -> Rounded { rounded(exact, propagated: 0) }

    /// A Float32 constant (1 - momentum, 1 / N): its value rounded once.
    public static func constant(_ v: Double) -> Rounded { Rounded(exact: v, error: u * abs(v)) }

    public func squareRoot() -> Rounded {
        precondition(exact >= 0, "square root of \(self)")
        let root = exact.squareRoot()
        let propagated = root > 0 ? min(error / root, error.squareRoot()) : error.squareRoot()
        return Rounded.rounded(root, propagated: propagated)
    }

    /// e^a computed in Double and rounded to Float: |e^a' - e^a| <= e^a (e^(e_a) - 1).
    public func exp() -> Rounded {
        let v = Foundation.exp(exact)
        let propagated = v * Foundation.expm1(error)
        return Rounded(exact: v, error: propagated + Rounded.libmRounding * (v + propagated))
    }

    /// log a computed in Double and rounded to Float: |log a' - log a| <= -log(1 - e_a / a).
    public func log() -> Rounded {
        precondition(error < exact, "log of \(self): the argument's error bound reaches zero")
        let v = Foundation.log(exact)
        let propagated = -Foundation.log1p(-error / exact)
        return Rounded(exact: v, error: propagated + Rounded.libmRounding * (abs(v) + propagated))
    }

    /// A Float32 sum of `terms` in any order: the terms' errors plus gammaTilde_K times the
    /// largest possible sum of their magnitudes.
    public static func sum(_ terms: [Rounded]) -> Rounded {
        var exact = 0.0, propagated = 0.0, magnitudes = 0.0
        for t in terms { exact += t.exact; propagated += t.error; magnitudes += t.magnitude }
        return Rounded(exact: exact, error: propagated + RoundingBound.probabilistic(terms: terms.count) * magnitudes)
    }

    /// sum_i a_i b_i in Float32 in any order (a BLAS dot or GEMM element).
    public static func dot(_ a: [Rounded], _ b: [Rounded]) -> Rounded {
        precondition(a.count == b.count)
        var exact = 0.0, propagated = 0.0, magnitudes = 0.0
        for (x, y) in zip(a, b) {
            exact += x.exact * y.exact
            let e = abs(x.exact) * y.error + abs(y.exact) * x.error + x.error * y.error
            propagated += e
            magnitudes += abs(x.exact * y.exact) + e
        }
        return Rounded(exact: exact, error: propagated + RoundingBound.probabilistic(terms: a.count) * magnitudes)
    }

    /// The element bound of `RoundingBound.ofSum`: an exact sum of `terms` products of exact
    /// Float32 inputs, with sum of magnitudes `absoluteSum`.
    public static func ofSum(terms: Int, exact: Double, absoluteSum: Double) -> Rounded {
        Rounded(exact: exact, error: RoundingBound.ofSum(terms: terms, absoluteSum: absoluteSum, exact: exact))
    }

    /// Elementwise `ofSum` for arrays of exact values and sums of |terms| (e.g. a Float64 product
    /// of the inputs and the same product of their absolute values).
    public static func ofSums(terms: Int, exact: [Double], absoluteSums: [Double]) -> [Rounded] {
        precondition(exact.count == absoluteSums.count)
        return zip(exact, absoluteSums).map { ofSum(terms: terms, exact: $0, absoluteSum: $1) }
    }

    /// Clamped to [-1, 1]: exact where the clamp is certain, the clamp cannot move a value
    /// further from its exact clamped value.
    public func clamped() -> Rounded {
        Rounded(exact: min(max(exact, -1), 1), error: error)
    }
}

extension Rounded {
    /// Float32 inputs: exact.
    public static func inputs(_ values: [Double]) -> [Rounded] { values.map { Rounded(exact: $0) } }
}

extension RoundingBound {
    /// Why `actual` is not within the bound of `expected` (the first element that is not, with
    /// its bound), or nil when every element is.
    public static func violation(_ actual: [Double], _ expected: [Rounded]) -> String? {
        guard actual.count == expected.count else { return "\(actual.count) values, expected \(expected.count)" }
        for i in actual.indices where !(abs(actual[i] - expected[i].exact) <= expected[i].error) {
            return "element \(i) is \(actual[i]), exact \(expected[i].exact), bound \(expected[i].error) "
                + "(off by \(abs(actual[i] - expected[i].exact)))"
        }
        return nil
    }

    /// The largest |actual - exact| / bound over the elements: <= 1 when `actual` is within the
    /// bound; a broken computation should be far above 1.
    public static func worstRatio(_ actual: [Double], _ expected: [Rounded]) -> Double {
        zip(actual, expected).reduce(0) { max($0, abs($1.0 - $1.1.exact) / $1.1.error) }
    }
}

/// Asserts that every element of `actual` is within its rounding bound of the exact value.
public func assertWithinBound(_ actual: [Double], _ expected: [Rounded], _ what: String,
                              file: StaticString = #filePath, line: UInt = #line) {
    if let why = RoundingBound.violation(actual, expected) { XCTFail("\(what): \(why)", file: file, line: line) }
}

public func assertWithinBound(_ actual: Double, _ expected: Rounded, _ what: String,
                              file: StaticString = #filePath, line: UInt = #line) {
    assertWithinBound([actual], [expected], what, file: file, line: line)
}

/// Asserts that a deliberately broken computation falls outside the bound: a bound that passes
/// it would not tell a right kernel from a wrong one.
public func assertBoundCatches(_ broken: [Double], _ expected: [Rounded], _ what: String,
                               file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNotNil(RoundingBound.violation(broken, expected),
                    "\(what): the broken variant passes the bound (worst ratio \(RoundingBound.worstRatio(broken, expected)))",
                    file: file, line: line)
}
