import Foundation

/// How far a Float32 computation may honestly be from the exact (Float64) value, derived from
/// the length of its sums and the magnitudes of their terms, so that a bound holds for every
/// BLAS kernel, conv engine, thread count and summation order, not for one kernel's rounding.
///
/// A sum s = t_1 + ... + t_K of products evaluated in Float32 in any order, with or without FMA,
/// satisfies |fl(s) - s| <= gamma_K * sum |t_i| with gamma_K = K u / (1 - K u) (Higham,
/// "Accuracy and Stability of Numerical Algorithms", 2nd ed., section 3.1). That worst case
/// grows with K; modelling the rounding errors as independent and mean zero, Higham and Mary
/// ("A New Approach to Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 41, 2019,
/// Theorem 3.1) show |fl(s) - s| <= gammaTilde_K(lambda) * sum |t_i| with
/// gammaTilde_K(lambda) = exp(lambda sqrt(K) u + K u^2 / (1 - u)) - 1 ~ lambda sqrt(K) u, with
/// probability at least 1 - 2K exp(-lambda^2 (1 - u)^2 / 2). `lambda` = 8 makes a failure from
/// honest rounding less likely than 1e-10 per element for K up to 10^4.
public enum RoundingBound {
    /// Unit roundoff of Float32: 2^-24.
    public static let unitRoundoff = 0x1p-24
    /// The confidence parameter of the probabilistic bound (see above).
    public static let lambda = 8.0

    /// gammaTilde_K(lambda) for a sum of `terms` Float32 terms.
    public static func probabilistic(terms k: Int, lambda: Double = lambda) -> Double {
        let u = unitRoundoff, n = Double(max(k, 1))
        return Foundation.exp(lambda * n.squareRoot() * u + n * u * u / (1 - u)) - 1
    }

    /// gamma_K, the worst case for any order and any rounding.
    public static func worstCase(terms k: Int) -> Double {
        let ku = Double(max(k, 1)) * unitRoundoff
        precondition(ku < 1, "gamma_K is defined for K u < 1")
        return ku / (1 - ku)
    }

    /// The bound for one computed element: the sum's error, plus one rounding of the stored
    /// result (|exact| u) and of each Float32 input (already exact here: test data is rounded to
    /// Float32 before the Float64 reference sees it).
    public static func ofSum(terms k: Int, absoluteSum: Double, exact: Double) -> Double {
        probabilistic(terms: k) * absoluteSum + unitRoundoff * abs(exact)
    }

    /// The first index whose |actual - exact| exceeds `ofSum(terms:absoluteSum:exact:)`, or nil.
    public static func firstViolation(actual: [Double], exact: [Double], absoluteSums: [Double], terms: Int) -> Int? {
        precondition(actual.count == exact.count && exact.count == absoluteSums.count)
        for i in actual.indices where !(abs(actual[i] - exact[i]) <= ofSum(terms: terms, absoluteSum: absoluteSums[i], exact: exact[i])) {
            return i
        }
        return nil
    }
}
