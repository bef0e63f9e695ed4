import Foundation
@testable import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest

/// 8-bit block-wise and bf16 optimizer state: the codes' error per block, one update against a
/// float64 reference, bf16's rounding, the same bits on every kernel path and thread split, and
/// the bytes booked.
final class LeanOptimizerStateTests: XCTestCase {
    private let block = ElementwiseKernels.quantizationBlock

    private func randomBlock(_ count: Int, seed: UInt64, outliers: Bool, nonNegative: Bool) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { i in
            // Moments span decades: a log-uniform magnitude over 1e-8...1e-1, a few large outliers.
            var x = Float(Foundation.pow(10, Double(rng.uniform(-8, -1))))
            if outliers && i % 97 == 3 { x *= 100 }
            return nonNegative || rng.uniform(0, 1) < 0.5 ? x : -x
        }
    }

    private func roundTrip(_ x: [Float], signed: Bool) -> (values: [Float], scale: Float) {
        var codes = [UInt8](repeating: 0, count: x.count), out = [Float](repeating: 0, count: x.count)
        let scale = ElementwiseKernels.quantize(x, into: &codes, count: x.count, signed: signed)
        ElementwiseKernels.dequantize(codes, scale: scale, into: &out, count: x.count, signed: signed)
        return (out, scale)
    }

    /// Signed code: |x^ - x| <= s (sqrt(u)/127 + 1/(4 127^2)) with u = |x|/s (half a code step in
    /// the square-root domain); unsigned: with r = u^(1/4) and d = 1/510, |x^ - x| <= s((r+d)^4 - r^4);
    /// plus 1e-6 relative for the fp32 arithmetic. The largest value comes back exactly.
    func testInt8CodesStayWithinHalfACodeStepPerBlock() {
        for (seed, count) in [(1, block), (2, block), (3, 100), (4, 1)] as [(UInt64, Int)] {
            for signed in [true, false] {
                for outliers in [false, true] {
                    let x = randomBlock(count, seed: seed, outliers: outliers, nonNegative: !signed)
                    let (y, s) = roundTrip(x, signed: signed)
                    XCTAssertEqual(s, x.map(abs).max()!, "the scale is the block's largest magnitude")
                    for (a, b) in zip(x, y) {
                        let u = Double(abs(a)) / Double(s)
                        let bound: Double
                        if signed {
                            bound = Double(s) * (u.squareRoot() / 127 + 1 / (4 * 127.0 * 127)) + 1e-6 * Double(abs(a))
                        } else {
                            let r = Foundation.pow(u, 0.25), d = 1 / 510.0
                            bound = Double(s) * (Foundation.pow(r + d, 4) - Foundation.pow(r, 4)) + 1e-6 * Double(abs(a))
                        }
                        XCTAssertLessThanOrEqual(abs(Double(b) - Double(a)), bound, "x \(a) -> \(b), scale \(s), signed \(signed)")
                        XCTAssertFalse(signed && a != 0 && b != 0 && (a < 0) != (b < 0), "sign kept")
                    }
                    let largest = x.indices.max { abs(x[$0]) < abs(x[$1]) }!
                    XCTAssertEqual(y[largest], x[largest], "the largest value is exact")
                }
            }
        }
        let zeros = roundTrip([Float](repeating: 0, count: 17), signed: false)
        XCTAssertEqual(zeros.scale, 0)
        XCTAssertEqual(zeros.values, [Float](repeating: 0, count: 17))
    }

    /// The code's small values: the unsigned code keeps 1e-8 of the scale within a factor 2
    /// (a linear 8-bit code rounds everything below 1/510 of the scale to zero, and Adam then
    /// divides by eps), 1e-6 within 30%, 1e-4 within 10% (half a code step: 4 (1/510) / u^(1/4)).
    func testUnsignedCodeResolvesSmallSecondMoments() {
        XCTAssertEqual(ElementwiseKernels.codeValue(1, signed: false), Float(Foundation.pow(1 / 255.0, 4)), accuracy: 1e-15)
        let x: [Float] = [1, 1e-8, 1e-6, 1e-4]
        let (y, _) = roundTrip(x, signed: false)
        for (a, b, tolerance) in [(x[1], y[1], 1.0), (x[2], y[2], 0.3), (x[3], y[3], 0.1)] {
            XCTAssertGreaterThan(b, a / 2, "\(a) -> \(b)")
            XCTAssertEqual(Double(b / a), 1, accuracy: tolerance, "\(a) -> \(b)")
        }
    }

    /// A signed block whose scale is below 2^-100 (a momentum that decayed for hundreds of steps)
    /// codes to zeros instead of overflowing 127^2 / scale: 127^2 / 1e-36 is infinite in float,
    /// and a zero of the block would become inf x 0 = NaN. A block just above the threshold codes
    /// normally. The unsigned code divides by the square root of the scale, which no float v can
    /// push below the threshold: a tiny v block still codes (its largest value exactly).
    func testTinyBlocksCodeToZeroAndBlocksJustAboveStillCode() {
        let tiny: [Float] = [1e-36, -5e-37, 0, 2e-37], above: [Float] = [1e-29, -2.5e-30, 0, 1e-31]
        let (y, s) = roundTrip(tiny, signed: true)
        XCTAssertEqual(s, 1e-36, "the scale is kept (it is the block's largest magnitude)")
        XCTAssertEqual(y, [0, 0, 0, 0])
        for signed in [true, false] {
            for x in [above, tiny].map({ signed ? $0 : $0.map(abs) }) where signed == false || x == above {
                let (ya, sa) = roundTrip(x, signed: signed)
                XCTAssertEqual(sa, x[0])
                XCTAssertEqual(ya[0], x[0], "the largest value is exact (signed \(signed), scale \(sa))")
                XCTAssertEqual(ya[2], 0, "zero stays zero")
                XCTAssertEqual(Double(ya[1] / x[1]), 1, accuracy: 0.05, "signed \(signed), scale \(sa)")
            }
        }
    }

    private func parameter(_ values: [Float], name: String = "p") -> Parameter {
        let p = Parameter(name: name, shape: [values.count], category: .weights, layer: 0, label: "p", ledger: .shared)
        p.value.copy(from: values)
        return p
    }

    private func settings(_ format: OptimizerStateFormat, _ kind: OptimizerKind = .adam) -> OptimizerSettings {
        var s = OptimizerSettings()
        s.kind = kind
        s.stateFormat = format
        return s
    }

    /// One int8 Adam step (from moments set through `assign`, so the start is exactly the
    /// dequantised values; v >= m^2 as Adam's moments are) against float64 with the optimizer's
    /// fp32 constants: the weights within 2 ulp of w plus 1e-5 of the update (each element's fp32
    /// chain is a few roundings), the new moments within half a code step of the float64 moments
    /// (the bound of the test above, with 1e-5 relative slack).
    func testInt8AdamStepMatchesAFloat64ReferenceWithinTheCodeBounds() {
        let n = 3 * block + 37
        var rng = Xoshiro256(seed: 11)
        let w0 = (0..<n).map { _ in rng.uniform(-1, 1) }, g = (0..<n).map { _ in rng.uniform(-0.01, 0.01) }
        let p = parameter(w0)
        let opt = Optimizer([p], settings: settings(.int8), ledger: .shared)
        let m0 = randomBlock(n, seed: 5, outliers: true, nonNegative: false).map { $0 * 0.1 }
        var rngV = Xoshiro256(seed: 6)
        let v0 = m0.map { $0 * $0 * rngV.uniform(1, 10) }
        m0.withUnsafeBufferPointer { p.state[0].assign($0) }
        v0.withUnsafeBufferPointer { p.state[1].assign($0) }
        let mStart = p.state[0].values().map(Double.init), vStart = p.state[1].values().map(Double.init)
        opt.stepCount = 9  // the 10th step: bias corrections well away from 1
        p.makeGrad().copy(from: g)
        let lr = 1e-3
        opt.step(lr: Float(lr))
        // The optimizer's constants, as it rounds them to Float.
        let b1 = Double(Float(0.9)), c1 = Double(1 - Float(0.9)), b2 = Double(Float(0.999)), c2 = Double(1 - Float(0.999))
        let bc1f = 1 - Float(Foundation.pow(Double(Float(0.9)), 10)), bc2f = 1 - Float(Foundation.pow(Double(Float(0.999)), 10))
        let stepSize = Double(Float(lr) / bc1f), invSqrtBc2 = Double(1 / bc2f.squareRoot())
        let w = p.value.array, m = p.state[0].values(), v = p.state[1].values()
        for blockStart in stride(from: 0, to: n, by: block) {
            let range = blockStart..<min(n, blockStart + block)
            let mRef = range.map { b1 * mStart[$0] + c1 * Double(g[$0]) }
            let vRef = range.map { b2 * vStart[$0] + c2 * Double(g[$0]) * Double(g[$0]) }
            let ms = mRef.map(abs).max()!, vs = vRef.max()!
            for (k, i) in range.enumerated() {
                let update = stepSize * mRef[k] / (vRef[k].squareRoot() * invSqrtBc2 + Double(Float(1e-8)))
                let wRef = Double(w0[i]) - update
                XCTAssertEqual(Double(w[i]), wRef, accuracy: 2 * Double(Float(wRef).ulp) + 1e-5 * abs(update), "w[\(i)]")
                let um = abs(mRef[k]) / ms
                XCTAssertEqual(Double(m[i]), mRef[k], accuracy: ms * (um.squareRoot() / 127 + 1 / 64516.0) * (1 + 1e-5) + 1e-7 * ms, "m[\(i)]")
                let r = Foundation.pow(vRef[k] / vs, 0.25)
                XCTAssertEqual(Double(v[i]), vRef[k], accuracy: vs * (Foundation.pow(r + 1 / 510.0, 4) - Foundation.pow(r, 4)) * (1 + 1e-5) + 1e-7 * vs, "v[\(i)]")
            }
        }
    }

    /// bf16 with g = 0 from v = 0.01: 0.999 v rounds back to v under round-to-nearest (bf16 has
    /// 8 significant bits, 0.999 is within half a unit of 1), so v never decays and Adam's
    /// denominator remembers an old gradient forever; stochastic rounding decays like fp32 on
    /// average (0.999^1000 = 0.368 after 1000 steps; mean over 4096 elements within 2%).
    func testBF16NearestRoundingFreezesTheSecondMomentStochasticRoundingDecaysIt() {
        var nearest = ElementwiseKernels.bf16Nearest(0.01)
        for _ in 0..<1000 { nearest = ElementwiseKernels.bf16Nearest(0.999 * ElementwiseKernels.bf16Value(nearest)) }
        XCTAssertEqual(ElementwiseKernels.bf16Value(nearest), ElementwiseKernels.bf16Value(ElementwiseKernels.bf16Nearest(0.01)), "round-to-nearest cannot decay v")

        let n = 4096
        let p = parameter([Float](repeating: 0, count: n))
        let opt = Optimizer([p], settings: settings(.bf16), ledger: .shared)
        let v0 = [Float](repeating: 0.01, count: n)
        v0.withUnsafeBufferPointer { p.state[1].assign($0) }
        let start = Double(p.state[1].values()[0])
        for _ in 0..<1000 {
            p.makeGrad().copy(from: [Float](repeating: 0, count: n))
            opt.step(lr: 1e-3)
        }
        let mean = p.state[1].values().reduce(0.0) { $0 + Double($1) } / Double(n)
        XCTAssertEqual(mean / start, Foundation.pow(0.999, 1000), accuracy: 0.02 * Foundation.pow(0.999, 1000))
    }

    /// Stochastic rounding is unbiased: over 1<<16 indices the mean of the rounded value is x
    /// within 4 standard errors.
    func testStochasticRoundingIsUnbiased() {
        let x: Float = 0.1234567
        let lo = Double(Float(bitPattern: x.bitPattern & 0xffff0000)), hi = Double(Float(bitPattern: (x.bitPattern & 0xffff0000) + 0x10000))
        let key = ElementwiseKernels.stochasticKey(seed: 7, step: 3)
        var sum = 0.0
        let n = 1 << 16
        var bits = [UInt16](repeating: 0, count: n)
        for i in 0..<n { bits[i] = ElementwiseKernels.bf16Stochastic(x, random16: lw_bits(key, i) & 0xffff) }
        for b in bits { sum += Double(ElementwiseKernels.bf16Value(b)) }
        let mean = sum / Double(n), sd = (hi - lo) / 2 / Double(n).squareRoot()
        XCTAssertTrue(bits.allSatisfy { Double(ElementwiseKernels.bf16Value($0)) == lo || Double(ElementwiseKernels.bf16Value($0)) == hi })
        XCTAssertEqual(mean, Double(x), accuracy: 4 * sd)
    }

    private func lw_bits(_ key: UInt32, _ i: Int) -> UInt32 { ElementwiseKernels.stochasticBits(key: key, index: i) }

    /// Every kernel path, and the optimizer's two-thread split (block-aligned), give the same
    /// bits as one single-threaded call over the whole tensor, for each lean format, Adam and SGD.
    func testLeanUpdatesGiveTheSameBitsOnEveryPathAndThreadSplit() {
        let n = Optimizer.parallelThreshold + 1000  // large enough to be split
        var rng = Xoshiro256(seed: 3)
        let w0 = (0..<n).map { _ in rng.uniform(-1, 1) }
        let grads = (0..<3).map { _ in (0..<n).map { _ in rng.uniform(-0.1, 0.1) } }
        let original = KernelPath.current
        defer { KernelPath.force(original) }
        for format in [OptimizerStateFormat.int8, .bf16] {
            for kind in OptimizerKind.allCases {
                var results: [[Float]] = []
                for path in KernelPath.allCases where path.isSupported {
                    KernelPath.force(path)
                    let p = parameter(w0)
                    let opt = Optimizer([p], settings: settings(format, kind), ledger: .shared)
                    for g in grads {
                        p.makeGrad().copy(from: g)
                        opt.step(lr: 1e-3)
                    }
                    results.append(p.value.array + p.state.flatMap { $0.values() })
                }
                // The reference: the same steps as one call per tensor, no thread split.
                let p = parameter(w0)
                let opt = Optimizer([p], settings: settings(format, kind), ledger: .shared)
                for g in grads {
                    p.makeGrad().copy(from: g)
                    opt.splitsAcrossCores = false
                    opt.step(lr: 1e-3)
                }
                let reference = p.value.array + p.state.flatMap { $0.values() }
                for r in results {
                    XCTAssertTrue(r.elementsEqual(reference) { $0.bitPattern == $1.bitPattern }, "\(format) \(kind)")
                }
            }
        }
    }

    /// The ledger books what `stateBytes` says, per tensor, for sizes around a block.
    func testOptimizerBooksExactlyStateBytes() {
        let sizes = [1, block - 1, block, block + 1, 5 * block + 3]
        for format in OptimizerStateFormat.allCases {
            for kind in OptimizerKind.allCases {
                let ledger = Ledger()
                let params = sizes.map { Parameter(name: "p\($0)", shape: [$0], category: .weights, layer: 0, label: "p", ledger: ledger) }
                let before = ledger.current().bytes(.optimizerState)
                let s = settings(format, kind)
                let opt = Optimizer(params, settings: s, ledger: ledger)
                XCTAssertEqual(ledger.current().bytes(.optimizerState) - before, s.stateBytes(parameters: sizes), "\(format) \(kind)")
                _ = opt
            }
        }
        let fp32 = settings(.fp32).stateBytes(parameters: [1000]), int8 = settings(.int8).stateBytes(parameters: [1000])
        XCTAssertEqual(fp32, 8000)
        XCTAssertEqual(int8, 2 * (1000 + 4 * 4))
        XCTAssertEqual(settings(.bf16).stateBytes(parameters: [1000]), 4000)
    }
}
