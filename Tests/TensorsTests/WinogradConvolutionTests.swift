import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// Winograd F(2x2, 3x3) (`WinogradConvolution`, the `.winograd` engine) against Float64 at every
/// vgg8b conv shape it computes (blocks and sim heads), all three passes.
///
/// The bound: Winograd's result is not a plain sum of the products x w, so the rounding bound of
/// a sum of |terms| (`RoundingBound.ofSum`) does not apply. Its error is bounded the same way by
/// the magnitudes it actually adds: the computation with every transform matrix, input and
/// weight replaced by its absolute value, S = sum over c of |A^T| (|G| |g| |G^T| . |B^T| |d| |B|) |A|.
/// Each output passes through C (GEMM) plus at most 12 (transforms) roundings, so
/// |fl(y) - y| <= gammaTilde_{C + 16}(lambda) S + u |y| (Higham and Mary's probabilistic bound,
/// as in `RoundingBound`). S is a small multiple of the direct sum of |terms| (about 4-6x here);
/// the broken variants below show the bound still catches a wrong convolution.
final class WinogradConvolutionTests: XCTestCase {
    // Every pass of every eligible shape runs Winograd here, whatever the measured policy picks.
    override func setUp() { WinogradConvolution.policy = .everyEligiblePass }
    override func tearDown() { WinogradConvolution.policy = .measured }

    static let bt: [[Double]] = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    static let gm: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
    static let at: [[Double]] = [[1, 1, 1, 0], [0, 1, -1, -1]]

    /// coefficient(k, i, j, absolute) = sum over xi of A^T[k][xi] G[xi][j] B^T[xi][i] (each in
    /// absolute value when asked): the weight of d_i g_j in 1-D output k.
    static func coefficient(_ k: Int, _ i: Int, _ j: Int, absolute: Bool) -> Double {
        (0..<4).reduce(0.0) { sum, xi in
            let term = at[k][xi] * gm[xi][j] * bt[xi][i]
            return sum + (absolute ? abs(at[k][xi]) * abs(gm[xi][j]) * abs(bt[xi][i]) : term)
        }
    }

    /// coefficient(k, i, j, absolute: true) at k 12 + i 3 + j.
    static let absolute: [Double] = (0..<2).flatMap { k in (0..<4).flatMap { i in (0..<3).map { j in coefficient(k, i, j, absolute: true) } } }

    /// The 1-D matrices compute correlation exactly: d_i g_j enters output k once if i = k + j,
    /// else not at all. (A transcription error in the matrices here or in C fails this or the
    /// bounds below.)
    func testTheTransformMatricesComputeCorrelationExactly() {
        for k in 0..<2 { for i in 0..<4 { for j in 0..<3 {
            XCTAssertEqual(Self.coefficient(k, i, j, absolute: false), i == k + j ? 1 : 0, "k \(k) i \(i) j \(j)")
        } } }
    }

    /// Sampled elements: the pass's Float64 value and the Winograd magnitude S.
    struct Sampled { var index: [Int] = [], exact: [Double] = [], magnitude: [Double] = [] }

    /// out (B, OC, H, W) = conv(input (B, C, H, W), filter) + bias, sampled, with S computed over
    /// the tile each element lies in. The filter is `weights` (OC, C, 3, 3), or with `transposed`
    /// the backward-data filter of weights (C, OC, 3, 3): w[c][o] rotated by 180 degrees.
    static func sampledConv(input: [Double], channels c: Int, outChannels oc: Int, h: Int, w: Int, batch: Int,
                            weights: [Double], transposed: Bool = false, bias: [Double]?, samples: Int, seed: UInt64) -> Sampled {
        input.withUnsafeBufferPointer { x in weights.withUnsafeBufferPointer { wt in absolute.withUnsafeBufferPointer { coef in
        var rng = ConvCheck.Random(seed: seed), out = Sampled()
        for _ in 0..<samples {
            let e = Int(rng.next() % UInt64(batch * oc * h * w))
            let (n, o, r, s) = (e / (oc * h * w), e / (h * w) % oc, e / w % h, e % w)
            var exact = bias?[o] ?? 0, magnitude = abs(bias?[o] ?? 0)
            let (kr, kc, top, left) = (r % 2, s % 2, r / 2 * 2 - 1, s / 2 * 2 - 1)
            for ci in 0..<c {
                // filter(jr, jc) = wt[base + jr 3 + jc] (forward) or wt[base + 8 - jr 3 - jc] (rotated)
                let filterBase = transposed ? (ci * oc + o) * 9 : (o * c + ci) * 9
                for ir in 0..<4 { for ic in 0..<4 {
                    let row = top + ir, col = left + ic
                    guard row >= 0, row < h, col >= 0, col < w else { continue }
                    let d = x[((n * c + ci) * h + row) * w + col]
                    for jr in 0..<3 { for jc in 0..<3 {
                        let g = wt[filterBase + (transposed ? 8 - (jr * 3 + jc) : jr * 3 + jc)]
                        if ir == kr + jr && ic == kc + jc { exact += d * g }
                        magnitude += coef[kr * 12 + ir * 3 + jr] * coef[kc * 12 + ic * 3 + jc] * abs(d) * abs(g)
                    } }
                } }
            }
            out.index.append(e); out.exact.append(exact); out.magnitude.append(magnitude)
        }
        return out
        } } }
    }

    /// dW (OC, C, 3, 3) = sum over images and positions of dy x, sampled, with S over every tile.
    static func sampledWeights(_ t: ConvKernelTests.Case, samples: Int, seed: UInt64) -> Sampled {
        let g = t.g, (c, oc, h, w) = (g.inChannels, g.outChannels, g.height, g.width)
        var rng = ConvCheck.Random(seed: seed), out = Sampled()
        for _ in 0..<samples {
            let e = Int(rng.next() % UInt64(oc * c * 9))
            let (o, ci, a, b) = (e / (c * 9), e / 9 % c, e / 3 % 3, e % 3)
            var exact = 0.0, magnitude = 0.0
            for n in 0..<t.batch {
                for ti in 0..<(h + 1) / 2 { for tj in 0..<(w + 1) / 2 {
                    for kr in 0..<2 { for kc in 0..<2 {
                        let (r, s) = (2 * ti + kr, 2 * tj + kc)
                        guard r < h, s < w else { continue }
                        let dy = t.r[((n * oc + o) * h + r) * w + s]
                        for ir in 0..<4 { for ic in 0..<4 {
                            let row = 2 * ti - 1 + ir, col = 2 * tj - 1 + ic
                            guard row >= 0, row < h, col >= 0, col < w else { continue }
                            let x = t.x[((n * c + ci) * h + row) * w + col]
                            if ir == kr + a && ic == kc + b { exact += dy * x }
                            magnitude += absolute[kr * 12 + ir * 3 + a] * absolute[kc * 12 + ic * 3 + b] * abs(dy) * abs(x)
                        } }
                    } }
                } }
            }
            out.index.append(e); out.exact.append(exact); out.magnitude.append(magnitude)
        }
        return out
    }

    /// The first sampled element outside gammaTilde_K S + u |exact|, or nil.
    static func violation(_ actual: [Double], _ s: Sampled, roundings k: Int) -> String? {
        let gamma = RoundingBound.probabilistic(terms: k)
        for (j, e) in s.index.enumerated() {
            let bound = gamma * s.magnitude[j] + RoundingBound.unitRoundoff * abs(s.exact[j])
            if !(abs(actual[e] - s.exact[j]) <= bound) {
                return "element \(e) is \(actual[e]), exact \(s.exact[j]), bound \(bound)"
            }
        }
        return nil
    }

    /// The three passes through `Conv2dKernel` on the `.winograd` engine.
    static func passes(_ t: ConvKernelTests.Case, ledger: Ledger = .shared) -> (y: [Double], dx: [Double], dw: [Double], db: [Double]) {
        XCTAssertTrue(ConvPass.allCases.allSatisfy { ConvEngine.winograd.usesWinograd(t.g, $0) }, "\(t.g) must run Winograd")
        return DNNLConvolutionTests.passes(t, engine: .winograd, ledger: ledger)
    }

    static func check(_ t: ConvKernelTests.Case, samples: Int, file: StaticString = #filePath, line: UInt = #line) {
        let g = t.g
        let run = passes(t)
        let forward = sampledConv(input: t.x, channels: g.inChannels, outChannels: g.outChannels, h: g.height, w: g.width,
                                  batch: t.batch, weights: t.w, bias: t.b, samples: samples, seed: 7)
        let data = sampledConv(input: t.r, channels: g.outChannels, outChannels: g.inChannels, h: g.height, w: g.width,
                               batch: t.batch, weights: t.w, transposed: true, bias: nil, samples: samples, seed: 8)
        let weights = sampledWeights(t, samples: max(8, samples / 4), seed: 9)
        let tiles = t.batch * ((g.height + 1) / 2) * ((g.width + 1) / 2)
        for (name, actual, sampled, k) in [("forward", run.y, forward, g.inChannels + 16), ("backward-data", run.dx, data, g.outChannels + 16),
                                           ("backward-weights", run.dw, weights, tiles + 16)] {
            if let v = violation(actual, sampled, roundings: k) { XCTFail("\(g) winograd \(name): \(v)", file: file, line: line) }
        }
        // The bias gradient is a plain sum over B H W.
        for o in 0..<g.outChannels {
            let values = (0..<t.batch).flatMap { n in (0..<g.outSpatial).map { t.r[(n * g.outChannels + o) * g.outSpatial + $0] } }
            let bound = RoundingBound.ofSum(terms: values.count, absoluteSum: values.reduce(0) { $0 + abs($1) }, exact: values.reduce(0, +))
            XCTAssertLessThanOrEqual(abs(run.db[o] - values.reduce(0, +)), bound, "\(g) bias grad \(o)", file: file, line: line)
        }
    }

    /// Every vgg8b conv the engine computes with Winograd, one image (two at 7x7: the bound on
    /// backward-weights then sums over images): blocks 1-4 and sim heads 0-4. The 3x3 block and
    /// the 1-channel first conv stay on oneDNN.
    func testVgg8bShapesMatchFloat64WithinTheWinogradBound() {
        let shapes = [
            ConvGeometry(inChannels: 128, outChannels: 128, height: 28, width: 28),
            ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28),
            ConvGeometry(inChannels: 256, outChannels: 256, height: 28, width: 28),
            ConvGeometry(inChannels: 256, outChannels: 256, height: 14, width: 14),
            ConvGeometry(inChannels: 256, outChannels: 512, height: 14, width: 14),
            ConvGeometry(inChannels: 512, outChannels: 512, height: 14, width: 14),
            ConvGeometry(inChannels: 512, outChannels: 512, height: 7, width: 7),
        ]
        for (i, g) in shapes.enumerated() {
            Self.check(ConvKernelTests.Case(g, batch: g.height == 7 ? 2 : 1, seed: UInt64(300 + i)), samples: 24)
        }
        XCTAssertFalse(ConvEngine.winograd.usesWinograd(ConvGeometry(inChannels: 512, outChannels: 512, height: 3, width: 3), .forward))
        XCTAssertFalse(ConvEngine.winograd.usesWinograd(ConvGeometry(inChannels: 1, outChannels: 128, height: 28, width: 28), .forward))
        // What the tool runs (the measured policy) at vgg8b's shapes.
        WinogradConvolution.policy = .measured
        let picked = shapes.map { g in ConvPass.allCases.filter { ConvEngine.winograd.usesWinograd(g, $0) } }
        XCTAssertEqual(picked, [[.backwardWeights], [.backwardWeights], [.forward, .backwardWeights], [.backwardWeights],
                                [.backwardWeights], [.backwardWeights], []])
    }

    /// Odd sizes (partial tiles at the bottom and right), channel counts that are no multiple of
    /// 8, and a batch that spans several GEMM blocks with a tail (7x9: 20 tiles an image, 12
    /// images a block; 27 images = 12 + 12 + 3).
    func testOddShapesAndBlockTailsMatchFloat64() {
        Self.check(ConvKernelTests.Case(ConvGeometry(inChannels: 17, outChannels: 19, height: 7, width: 9), batch: 27, seed: 41), samples: 200)
        Self.check(ConvKernelTests.Case(ConvGeometry(inChannels: 16, outChannels: 24, height: 10, width: 8), batch: 3, seed: 42), samples: 200)
    }

    /// The bound is tight enough to catch a wrong convolution: one tap left out, the input read
    /// one pixel off, backward-data with the kernel unflipped, backward-weights one pixel off.
    func testTheBoundCatchesBrokenConvolutions() {
        let g = ConvGeometry(inChannels: 64, outChannels: 32, height: 14, width: 14)
        let t = ConvKernelTests.Case(g, batch: 2, seed: 43)
        let forward = Self.sampledConv(input: t.x, channels: 64, outChannels: 32, h: 14, w: 14, batch: 2,
                                       weights: t.w, bias: t.b, samples: 64, seed: 7)
        XCTAssertNil(Self.violation(Self.passes(t).y, forward, roundings: 64 + 16))
        var missingTap = t
        for o in 0..<32 { missingTap.w[(o * 64 + 3) * 9 + 4] = 0 }
        XCTAssertNotNil(Self.violation(Self.passes(missingTap).y, forward, roundings: 64 + 16), "one tap missing")
        var shifted = t
        shifted.x = Array(t.x.dropFirst()) + [t.x[0]]
        XCTAssertNotNil(Self.violation(Self.passes(shifted).y, forward, roundings: 64 + 16), "input one pixel off")
        let data = Self.sampledConv(input: t.r, channels: 32, outChannels: 64, h: 14, w: 14, batch: 2,
                                    weights: t.w, transposed: true, bias: nil, samples: 64, seed: 8)
        var unflipped = t
        for o in 0..<32 { for c in 0..<64 { for a in 0..<3 { for b in 0..<3 {
            unflipped.w[((o * 64 + c) * 3 + a) * 3 + b] = t.w[((o * 64 + c) * 3 + 2 - a) * 3 + 2 - b]
        } } } }
        XCTAssertNotNil(Self.violation(Self.passes(unflipped).dx, data, roundings: 32 + 16), "backward-data unflipped")
        let weights = Self.sampledWeights(t, samples: 32, seed: 9)
        var dyShifted = t
        dyShifted.r = Array(t.r.dropFirst()) + [t.r[0]]
        XCTAssertNotNil(Self.violation(Self.passes(dyShifted).dw, weights, roundings: 2 * 49 + 16), "backward-weights one pixel off")
    }

    /// accumulate adds to what dx and dW hold (one more rounding each), and the transforms give
    /// the same bits on every kernel path.
    func testAccumulateAddsAndEveryKernelPathGivesTheSameBits() {
        let g = ConvGeometry(inChannels: 16, outChannels: 16, height: 9, width: 7)
        let t = ConvKernelTests.Case(g, batch: 3, seed: 44)
        let ledger = Ledger(layerCapacity: 2, eventCapacity: 0)
        let ws = ConvWorkspace(g, engine: .winograd, ledger: ledger)
        XCTAssertEqual(ws.storage.byteCount, WinogradConvolution.workspaceBytes(g))
        let w = ConvCheck.tensor(g.weightShape, t.w, .weights, ledger: ledger)
        let dy = ConvCheck.tensor(g.outputShape(batch: 3), t.r, .activationGrads, ledger: ledger)
        let x = ConvCheck.tensor(g.inputShape(batch: 3), t.x, ledger: ledger)
        func run() -> (dx: [Float], dw: [Float]) {
            let dx = Tensor(g.inputShape(batch: 3), .activationGrads, label: "dx", ledger: ledger)
            let dw = Tensor(g.weightShape, .gradients, label: "dw", ledger: ledger)
            Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
            Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: nil, workspace: ws)
            let once = (dx.array, dw.array)
            Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws, accumulate: true)
            Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: nil, workspace: ws, accumulate: true)
            XCTAssertEqual(dx.array, once.0.map { $0 + $0 }, "dx accumulated onto itself is 2 dx exactly")
            XCTAssertEqual(dw.array, once.1.map { $0 + $0 }, "dW accumulated onto itself is 2 dW exactly")
            return once
        }
        let start = KernelPath.current
        defer { KernelPath.force(start) }
        let reference = run()
        for path in KernelPath.allCases where path.isSupported && path != start {
            KernelPath.force(path)
            let other = run()
            XCTAssertEqual(other.dx, reference.dx, "\(path) backward-data")
            XCTAssertEqual(other.dw, reference.dw, "\(path) backward-weights")
        }
    }

    /// Inside `reusingTransformedFilters` each filter is transformed once, and the results are the
    /// bits of passes that transform afresh: across interleaved passes, a second weight tensor,
    /// and a pass of another geometry over the same memory in between (which lays the memory out
    /// differently, so the held filters must be made again).
    func testReusedFiltersGiveTheSameBitsAsFreshOnes() {
        let g = ConvGeometry(inChannels: 16, outChannels: 24, height: 8, width: 8)
        let other = ConvGeometry(inChannels: 24, outChannels: 24, height: 8, width: 8)
        let ledger = Ledger(layerCapacity: 2, eventCapacity: 0)
        let ws = ConvWorkspace(g, alsoServing: [other], engine: .winograd, ledger: ledger)
        let view = ws.serving(other)
        let t = ConvKernelTests.Case(g, batch: 2, seed: 45), u = ConvKernelTests.Case(g, batch: 2, seed: 46)
        let o = ConvKernelTests.Case(other, batch: 2, seed: 47)
        let x = ConvCheck.tensor(g.inputShape(batch: 2), t.x, ledger: ledger)
        let w1 = ConvCheck.tensor(g.weightShape, t.w, .weights, ledger: ledger)
        let w2 = ConvCheck.tensor(g.weightShape, u.w, .weights, ledger: ledger)
        let dy = ConvCheck.tensor(g.outputShape(batch: 2), t.r, .activationGrads, ledger: ledger)
        let ox = ConvCheck.tensor(other.inputShape(batch: 2), o.x, ledger: ledger)
        let ow = ConvCheck.tensor(other.weightShape, o.w, .weights, ledger: ledger)
        let oy = Tensor(other.outputShape(batch: 2), .activations, label: "oy", ledger: ledger)
        func sequence() -> [[Float]] {
            var out: [[Float]] = []
            for (w, interrupt) in [(w1, false), (w2, false), (w1, true), (w1, false)] {
                let y = Tensor(g.outputShape(batch: 2), .activations, label: "y", ledger: ledger)
                let dx = Tensor(g.inputShape(batch: 2), .activationGrads, label: "dx", ledger: ledger)
                let dw = Tensor(g.weightShape, .gradients, label: "dw", ledger: ledger)
                Conv2dKernel.forward(x: x, weight: w, bias: nil, into: y, workspace: ws)
                Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: nil, workspace: ws)
                Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
                if interrupt { Conv2dKernel.forward(x: ox, weight: ow, bias: nil, into: oy, workspace: view) }
                out += [y.array, dx.array, dw.array]
            }
            return out
        }
        let fresh = sequence()
        let reused = ws.reusingTransformedFilters { sequence() }
        XCTAssertEqual(reused.count, fresh.count)
        for (i, (a, b)) in zip(reused, fresh).enumerated() { XCTAssertEqual(a, b, "result \(i)") }
        XCTAssertNotEqual(fresh[0], fresh[3], "the two weights give different outputs")
    }
}
