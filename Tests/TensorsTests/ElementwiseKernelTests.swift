import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// The elementwise C kernels on every dispatch path this CPU supports give the same bits as the
/// generic path, and the generic path follows the definitions in Float64 to one rounding per
/// operation. Lengths cover the vector loops and their tails (0..<16 leftover elements).
final class ElementwiseKernelTests: XCTestCase {
    static let lengths = [0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 1027]

    override func tearDown() {
        // Back to the path the process chose for itself, for the tests that follow.
        KernelPath.force(Self.initialPath)
        super.tearDown()
    }

    static let initialPath = KernelPath.current

    /// Runs `body` on every supported path and returns each path's output.
    func onEveryPath(_ body: () -> [Float]) -> [(KernelPath, [Float])] {
        KernelPath.allCases.filter(\.isSupported).map { path in
            XCTAssertTrue(KernelPath.force(path))
            XCTAssertEqual(KernelPath.current, path)
            return (path, body())
        }
    }

    func assertSameBits(_ results: [(KernelPath, [Float])], _ what: String) {
        guard let (_, reference) = results.first(where: { $0.0 == .generic }) else { return XCTFail("generic path missing") }
        for (path, values) in results {
            XCTAssertEqual(values.map(\.bitPattern), reference.map(\.bitPattern), "\(what): \(path) differs from generic")
        }
    }

    func testGenericAlwaysSupportedAndTheCPUsBestPathIsChosen() {
        XCTAssertTrue(KernelPath.generic.isSupported)
        #if arch(x86_64)
        XCTAssertFalse(KernelPath.neon.isSupported)
        XCTAssertFalse(KernelPath.force(.neon), "a path the CPU cannot run is refused")
        if ProcessInfo.processInfo.environment["LAYERWISE_KERNELS"] == nil {
            let best: KernelPath = KernelPath.avx512.isSupported ? .avx512 : KernelPath.avx2.isSupported ? .avx2 : .generic
            XCTAssertEqual(Self.initialPath, best)
        }
        #endif
    }

    func testAdamGivesTheSameBitsOnEveryPathAndFollowsTheDefinition() {
        for n in Self.lengths {
            for weightDecay: Float in [0, 0.01] {
                var rng = TestRandom(seed: UInt64(n) + 1)
                let w0 = rng.uniform(n).map(Float.init), g = rng.uniform(n).map(Float.init)
                let m0 = rng.uniform(n).map { Float($0 * 0.1) }, v0 = rng.uniform(n, 0, 0.01).map(Float.init)
                let (b1, b2, step, isb, eps): (Float, Float, Float, Float, Float) = (0.9, 0.999, 1e-3, 1.7, 1e-8)
                let results = onEveryPath {
                    var w = w0, m = m0, v = v0
                    ElementwiseKernels.adam(weights: &w, gradients: g, m: &m, v: &v, count: n, beta1: b1, beta2: b2,
                                            stepSize: step, invSqrtBc2: isb, epsilon: eps, weightDecay: weightDecay)
                    return w + m + v
                }
                assertSameBits(results, "adam n \(n) wd \(weightDecay)")
                // The definition, one Float32 rounding per operation.
                for i in 0..<n {
                    let gi = weightDecay == 0 ? g[i] : g[i] + weightDecay * w0[i]
                    let mi = b1 * m0[i] + (1 - b1) * gi
                    let vi = b2 * v0[i] + (1 - b2) * gi * gi
                    let wi = w0[i] - step * mi / (vi.squareRoot() * isb + eps)
                    let out = results[0].1
                    XCTAssertEqual([out[i], out[n + i], out[2 * n + i]].map(\.bitPattern), [wi, mi, vi].map(\.bitPattern), "adam element \(i) of \(n)")
                }
            }
        }
    }

    func testSGDGivesTheSameBitsOnEveryPathAndFollowsTheDefinition() {
        for n in Self.lengths {
            for first in [true, false] {
                var rng = TestRandom(seed: UInt64(n) + 99)
                let w0 = rng.uniform(n).map(Float.init), g = rng.uniform(n).map(Float.init), b0 = rng.uniform(n).map(Float.init)
                let results = onEveryPath {
                    var w = w0, b = b0
                    ElementwiseKernels.sgd(weights: &w, gradients: g, momentum: &b, count: n, lr: 0.1, mu: 0.9, weightDecay: 5e-4, first: first)
                    return w + b
                }
                assertSameBits(results, "sgd n \(n) first \(first)")
                for i in 0..<n {
                    let gi = g[i] + Float(5e-4) * w0[i]
                    let bi = first ? gi : Float(0.9) * b0[i] + gi
                    XCTAssertEqual(results[0].1[i].bitPattern, (w0[i] - Float(0.1) * bi).bitPattern, "sgd element \(i) of \(n)")
                }
            }
        }
    }

    func testActivationsGiveTheSameBitsOnEveryPath() {
        for n in Self.lengths where n > 0 {
            var rng = TestRandom(seed: UInt64(n) + 7)
            var x0 = rng.uniform(n).map(Float.init)
            if n > 3 { x0[0] = 0; x0[1] = -0.0; x0[2] = .nan; x0[3] = -.infinity }  // the edges of "> 0"
            let dy = rng.uniform(n).map(Float.init)
            for nonlinearity in Nonlinearity.allCases {
                let results = onEveryPath {
                    let x = Tensor([n], .activations, label: "x", ledger: Ledger())
                    let g = Tensor([n], .activationGrads, label: "g", ledger: Ledger())
                    x.copy(from: x0)
                    g.copy(from: dy)
                    nonlinearity.forward(x)
                    nonlinearity.backward(output: x, grad: g)
                    return x.array + g.array
                }
                assertSameBits(results, "\(nonlinearity) n \(n)")
                let s = nonlinearity.negativeSlope
                for i in 0..<n {
                    let y = x0[i] > 0 ? x0[i] : x0[i] * s
                    XCTAssertEqual(results[0].1[i].bitPattern, y.bitPattern, "\(nonlinearity) forward element \(i)")
                    XCTAssertEqual(results[0].1[n + i].bitPattern, (y > 0 ? dy[i] : dy[i] * s).bitPattern, "\(nonlinearity) backward element \(i)")
                }
            }
        }
    }
}
