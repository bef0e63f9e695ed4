import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// Small helpers for the conv, pooling and spatial-std kernel tests: seeded data, Float64
/// finite differences and the conv passes' exact values with their rounding bounds. Kept in one
/// namespace so they cannot clash with other test helpers of the module.
enum ConvCheck {
    /// A tiny seeded generator (SplitMix64): test data must not depend on other modules.
    struct Random {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// n values uniform in [low, high), rounded to Float so the Float64 reference sees
        /// exactly what the kernel sees.
        mutating func uniform(_ n: Int, _ low: Double = -1, _ high: Double = 1) -> [Double] {
            (0..<n).map { _ in
                let u = Double(next() >> 11) / Double(1 << 53)
                return Double(Float(low + (high - low) * u))
            }
        }
    }

    static func tensor(_ shape: [Int], _ values: [Double], _ category: Category = .activations,
                       ledger: Ledger = .shared) -> Tensor {
        let t = Tensor(shape, category, label: "test", ledger: ledger, zeroed: false)
        t.copy(from: values.map { Float($0) })
        return t
    }

    static func doubles(_ t: Tensor) -> [Double] { t.array.map { Double($0) } }

    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in a.indices { s += a[i] * b[i] }
        return s
    }

    static func norm(_ v: [Double]) -> Double { dot(v, v).squareRoot() }

    /// Central differences of f at x: (f(x + h e_i) - f(x - h e_i)) / 2h.
    static func numericalGradient(at x: [Double], step h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
        var x = x
        return x.indices.map { i in
            let v = x[i]
            x[i] = v + h; let plus = f(x)
            x[i] = v - h; let minus = f(x)
            x[i] = v
            return (plus - minus) / (2 * h)
        }
    }

    /// The exact results of a conv case's three passes with their rounding bounds: every element
    /// is a Float32 sum, within `RoundingBound.ofSum` of its exact value whatever the engine's
    /// order, blocking or thread split. The sums of |terms| are the same convolutions of the
    /// inputs' absolute values. Lengths: forward C k^2 products (+ the bias), backward-data
    /// OC k^2, backward-weights and the bias gradient B H' W' (fewer at padded borders; the
    /// longest length bounds them all).
    struct Expected {
        var y: [Rounded], yWithoutBias: [Rounded], dx: [Rounded], dw: [Rounded], db: [Rounded]
        /// dx accumulated onto itself (`accumulate: true` after a first pass): one sum of 2 OC k^2
        /// terms in a particular order, exact value and sum of |terms| doubled.
        var dxTwice: [Rounded]
        var forwardTerms: Int, dataTerms: Int, weightTerms: Int
    }

    static func expected(_ t: ConvKernelTests.Case) -> Expected {
        let g = t.g, k2 = g.kernel * g.kernel
        let (ax, aw, ab, ar) = (t.x.map(abs), t.w.map(abs), t.b.map(abs), t.r.map(abs))
        let forwardTerms = g.inChannels * k2, dataTerms = g.outChannels * k2, weightTerms = t.batch * g.outSpatial
        let y = ConvKernelTests.referenceConv(t.x, t.w, t.b, g, batch: t.batch)
        let yAbs = ConvKernelTests.referenceConv(ax, aw, ab, g, batch: t.batch)
        let y0 = ConvKernelTests.referenceConv(t.x, t.w, nil, g, batch: t.batch)
        let y0Abs = ConvKernelTests.referenceConv(ax, aw, nil, g, batch: t.batch)
        let grads = DNNLConvolutionTests.referenceBackward(t.x, t.w, t.r, g, batch: t.batch)
        let gradsAbs = DNNLConvolutionTests.referenceBackward(ax, aw, ar, g, batch: t.batch)
        return Expected(y: Rounded.ofSums(terms: forwardTerms + 1, exact: y, absoluteSums: yAbs),
                        yWithoutBias: Rounded.ofSums(terms: forwardTerms, exact: y0, absoluteSums: y0Abs),
                        dx: Rounded.ofSums(terms: dataTerms, exact: grads.dx, absoluteSums: gradsAbs.dx),
                        dw: Rounded.ofSums(terms: weightTerms, exact: grads.dw, absoluteSums: gradsAbs.dw),
                        db: Rounded.ofSums(terms: weightTerms, exact: grads.db, absoluteSums: gradsAbs.db),
                        dxTwice: Rounded.ofSums(terms: 2 * dataTerms, exact: grads.dx.map { 2 * $0 }, absoluteSums: gradsAbs.dx.map { 2 * $0 }),
                        forwardTerms: forwardTerms, dataTerms: dataTerms, weightTerms: weightTerms)
    }
}
