import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// oneDNN's convolution (`DNNLConvolution`, the `.dnnl` engine of `Conv2dKernel`) against the
/// Float64 direct convolution and the im2col path, its accumulate contract and its ledger booking.
final class DNNLConvolutionTests: XCTestCase {
    /// Float64 gradients of L = sum(y * r) for y = conv(x, w) + b: dx, dw, db.
    static func referenceBackward(_ x: [Double], _ w: [Double], _ r: [Double], _ g: ConvGeometry, batch: Int)
        -> (dx: [Double], dw: [Double], db: [Double]) {
        let (c, h, wd, k, p) = (g.inChannels, g.height, g.width, g.kernel, g.padding)
        let (oc, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: oc)
        for n in 0..<batch {
            for o in 0..<oc {
                for row in 0..<oh {
                    for col in 0..<ow {
                        let dy = r[((n * oc + o) * oh + row) * ow + col]
                        db[o] += dy
                        for ci in 0..<c {
                            for i in 0..<k {
                                for j in 0..<k {
                                    let ih = row + i - p, iw = col + j - p
                                    guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                                    let xi = ((n * c + ci) * h + ih) * wd + iw, wi = ((o * c + ci) * k + i) * k + j
                                    dx[xi] += w[wi] * dy
                                    dw[wi] += x[xi] * dy
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw, db)
    }

    /// Odd small shapes: same padding, 1x1, valid, 5x5 with padding 2, one input channel (x stays
    /// nchw) and a 1x1 image.
    static let geometries = [
        ConvGeometry(inChannels: 5, outChannels: 7, height: 5, width: 7, kernel: 3, padding: 1),
        ConvGeometry(inChannels: 4, outChannels: 6, height: 6, width: 5, kernel: 1, padding: 0),
        ConvGeometry(inChannels: 6, outChannels: 3, height: 5, width: 7, kernel: 3, padding: 0),
        ConvGeometry(inChannels: 17, outChannels: 20, height: 4, width: 3, kernel: 5, padding: 2),
        ConvGeometry(inChannels: 1, outChannels: 9, height: 6, width: 5, kernel: 3, padding: 1),
        ConvGeometry(inChannels: 2, outChannels: 3, height: 1, width: 1, kernel: 3, padding: 1),
    ]

    /// Runs the three passes through `Conv2dKernel` with a workspace of `engine`:
    /// (y, dx, dw, db) for dy = r.
    static func passes(_ t: ConvKernelTests.Case, engine: ConvEngine, ledger: Ledger = .shared)
        -> (y: [Double], dx: [Double], dw: [Double], db: [Double]) {
        let g = t.g, batch = t.batch
        let x = ConvCheck.tensor(g.inputShape(batch: batch), t.x, ledger: ledger)
        let w = ConvCheck.tensor(g.weightShape, t.w, .weights, ledger: ledger)
        let b = ConvCheck.tensor([g.outChannels], t.b, .weights, ledger: ledger)
        let dy = ConvCheck.tensor(g.outputShape(batch: batch), t.r, .activationGrads, ledger: ledger)
        let y = Tensor(g.outputShape(batch: batch), .activations, label: "y", ledger: ledger, zeroed: false)
        y.fill(.nan)  // every element must be written
        let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx", ledger: ledger, zeroed: false)
        dx.fill(.nan)
        let dw = Tensor(g.weightShape, .gradients, label: "dw", ledger: ledger, zeroed: false)
        dw.fill(.nan)
        let db = Tensor([g.outChannels], .gradients, label: "db", ledger: ledger, zeroed: false)
        db.fill(.nan)
        let ws = ConvWorkspace(g, engine: engine, ledger: ledger)
        Conv2dKernel.forward(x: x, weight: w, bias: b, into: y, workspace: ws)
        Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
        Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: db, workspace: ws)
        return (ConvCheck.doubles(y), ConvCheck.doubles(dx), ConvCheck.doubles(dw), ConvCheck.doubles(db))
    }

    /// Both engines, each against the Float64 passes within the rounding bound of every
    /// element's sum (`ConvCheck.expected`), not against each other: they sum in different
    /// orders, so their difference is the sum of two rounding errors.
    func testAllPassesOnBothEnginesMatchFloat64WithinTheRoundingBoundOnOddShapes() {
        for (i, g) in Self.geometries.enumerated() {
            XCTAssertTrue(DNNLConvolution.handles(g))
            let t = ConvKernelTests.Case(g, batch: 3, seed: UInt64(40 + i))
            let expected = ConvCheck.expected(t)
            for engine in [ConvEngine.dnnl, .im2col] {
                let run = Self.passes(t, engine: engine)
                assertWithinBound(run.y, expected.y, "\(g) \(engine) forward")
                assertWithinBound(run.dx, expected.dx, "\(g) \(engine) backward-data")
                assertWithinBound(run.dw, expected.dw, "\(g) \(engine) backward-weights")
                assertWithinBound(run.db, expected.db, "\(g) \(engine) bias grad")
            }
        }
        // Broken variant: backward-data correlating dy with the kernel unflipped (the weights
        // rotated by 180 degrees in space), on the geometries with a kernel larger than 1x1.
        for g in Self.geometries where g.kernel > 1 && g.height > 1 {
            let t = ConvKernelTests.Case(g, batch: 3, seed: 99), k = g.kernel
            var rotated = t
            for o in 0..<g.outChannels { for c in 0..<g.inChannels { for a in 0..<k { for b in 0..<k {
                rotated.w[((o * g.inChannels + c) * k + a) * k + b] = t.w[((o * g.inChannels + c) * k + (k - 1 - a)) * k + (k - 1 - b)]
            } } } }
            assertBoundCatches(Self.passes(rotated, engine: .dnnl).dx, ConvCheck.expected(t).dx,
                               "\(g): backward-data with the kernel unflipped")
        }
    }

    /// Exact (Float64) value and sum of |terms| of sampled elements of the three passes, for
    /// y = conv(x, w) + b and dy = r: forward sums C k^2 products (+ bias), backward-data sums
    /// OC k^2, backward-weights sums B H' W', the bias gradient B H' W'.
    struct SampledExact {
        var index: [Int] = [], exact: [Double] = [], absoluteSum: [Double] = []
    }

    static func sampledForward(_ t: ConvKernelTests.Case, samples: Int, seed: UInt64) -> SampledExact {
        let g = t.g, (c, h, wd, k, p) = (g.inChannels, g.height, g.width, g.kernel, g.padding)
        let (oc, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        var rng = ConvCheck.Random(seed: seed), out = SampledExact()
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(t.batch * oc * oh * ow))
            let (n, o, r, s) = (i / (oc * oh * ow), i / (oh * ow) % oc, i / ow % oh, i % ow)
            var sum = t.b[o], absSum = abs(t.b[o])
            for ci in 0..<c { for a in 0..<k { for b in 0..<k {
                let ih = r + a - p, iw = s + b - p
                guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                let term = t.x[((n * c + ci) * h + ih) * wd + iw] * t.w[((o * c + ci) * k + a) * k + b]
                sum += term; absSum += abs(term)
            } } }
            out.index.append(i); out.exact.append(sum); out.absoluteSum.append(absSum)
        }
        return out
    }

    static func sampledBackwardData(_ t: ConvKernelTests.Case, samples: Int, seed: UInt64) -> SampledExact {
        let g = t.g, (c, h, wd, k, p) = (g.inChannels, g.height, g.width, g.kernel, g.padding)
        let (oc, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        var rng = ConvCheck.Random(seed: seed), out = SampledExact()
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(t.batch * c * h * wd))
            let (n, ci, ih, iw) = (i / (c * h * wd), i / (h * wd) % c, i / wd % h, i % wd)
            var sum = 0.0, absSum = 0.0
            for o in 0..<oc { for a in 0..<k { for b in 0..<k {
                let r = ih - a + p, s = iw - b + p
                guard r >= 0, r < oh, s >= 0, s < ow else { continue }
                let term = t.w[((o * c + ci) * k + a) * k + b] * t.r[((n * oc + o) * oh + r) * ow + s]
                sum += term; absSum += abs(term)
            } } }
            out.index.append(i); out.exact.append(sum); out.absoluteSum.append(absSum)
        }
        return out
    }

    static func sampledBackwardWeights(_ t: ConvKernelTests.Case, samples: Int, seed: UInt64) -> SampledExact {
        let g = t.g, (c, h, wd, k, p) = (g.inChannels, g.height, g.width, g.kernel, g.padding)
        let (oc, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        var rng = ConvCheck.Random(seed: seed), out = SampledExact()
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(oc * c * k * k))
            let (o, ci, a, b) = (i / (c * k * k), i / (k * k) % c, i / k % k, i % k)
            var sum = 0.0, absSum = 0.0
            for n in 0..<t.batch { for r in 0..<oh { for s in 0..<ow {
                let ih = r + a - p, iw = s + b - p
                guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                let term = t.x[((n * c + ci) * h + ih) * wd + iw] * t.r[((n * oc + o) * oh + r) * ow + s]
                sum += term; absSum += abs(term)
            } } }
            out.index.append(i); out.exact.append(sum); out.absoluteSum.append(absSum)
        }
        return out
    }

    /// Every sampled element of `actual` within `RoundingBound.ofSum` of its exact value, or the
    /// first that is not.
    static func violation(_ actual: [Double], _ sampled: SampledExact, terms: Int) -> String? {
        let picked = sampled.index.map { actual[$0] }
        guard let j = RoundingBound.firstViolation(actual: picked, exact: sampled.exact,
                                                   absoluteSums: sampled.absoluteSum, terms: terms) else { return nil }
        let bound = RoundingBound.ofSum(terms: terms, absoluteSum: sampled.absoluteSum[j], exact: sampled.exact[j])
        return "element \(sampled.index[j]) is \(picked[j]), exact \(sampled.exact[j]), bound \(bound)"
    }

    /// vgg8b's 128->256 conv at 28x28 and its 512->512 conv at 3x3, batch 2, on both engines:
    /// every sampled element of every pass is within the rounding bound of a sum of its length
    /// (forward 1,152 and 4,608 terms) of the Float64 value. The two engines then agree with each
    /// other within the sum of their bounds, on any BLAS kernel and oneDNN ISA. The bound is tight
    /// enough to catch a broken convolution: one weight tap left out, or the input read one pixel
    /// off, fails it.
    func testVgg8bShapesMatchFloat64WithinTheRoundingBoundOnBothEngines() {
        for (i, g) in [ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28),
                       ConvGeometry(inChannels: 512, outChannels: 512, height: 3, width: 3)].enumerated() {
            let t = ConvKernelTests.Case(g, batch: 2, seed: UInt64(60 + i))
            let k2 = g.kernel * g.kernel
            let forward = Self.sampledForward(t, samples: 400, seed: 90)
            let data = Self.sampledBackwardData(t, samples: 400, seed: 91)
            let weights = Self.sampledBackwardWeights(t, samples: 200, seed: 92)
            let spatial = t.batch * g.outSpatial
            let exactBias = (0..<g.outChannels).map { o in (0..<t.batch).flatMap { n in (0..<g.outSpatial).map { t.r[(n * g.outChannels + o) * g.outSpatial + $0] } } }
            let biasSampled = SampledExact(index: Array(0..<g.outChannels), exact: exactBias.map { $0.reduce(0, +) },
                                           absoluteSum: exactBias.map { $0.reduce(0) { $0 + abs($1) } })
            for engine in [ConvEngine.dnnl, .im2col] {
                let run = Self.passes(t, engine: engine)
                for (name, actual, sampled, terms) in [("forward", run.y, forward, g.inChannels * k2 + 1),
                                                       ("backward-data", run.dx, data, g.outChannels * k2),
                                                       ("backward-weights", run.dw, weights, spatial),
                                                       ("bias grad", run.db, biasSampled, spatial)] {
                    if let v = Self.violation(actual, sampled, terms: terms) { XCTFail("\(g) \(engine) \(name): \(v)") }
                }
            }
            // Broken variants the bound must catch (on the default engine).
            var missingTap = t
            for o in 0..<g.outChannels { missingTap.w[(o * g.inChannels + 3) * k2 + 4] = 0 }  // centre tap of channel 3
            XCTAssertNotNil(Self.violation(Self.passes(missingTap, engine: .dnnl).y, forward, terms: g.inChannels * k2 + 1),
                            "\(g): a forward without one weight tap must break the bound")
            var shifted = t
            shifted.x = Array(t.x.dropFirst()) + [t.x[0]]  // every pixel read one place off
            XCTAssertNotNil(Self.violation(Self.passes(shifted, engine: .dnnl).y, forward, terms: g.inChannels * k2 + 1),
                            "\(g): a forward reading the input one pixel off must break the bound")
        }
    }

    /// A batch that is not a multiple of the chunk (5 = 2 + 2 + 1: a tail primitive) gives the
    /// whole batch's results, and the tail reuses the full chunk's buffers.
    func testChunksAndTailEqualOneChunk() {
        let g = Self.geometries[0], batch = 5
        let t = ConvKernelTests.Case(g, batch: batch, seed: 71)
        func run(chunk: Int) -> (y: [Float], dx: [Float], dw: [Float], db: [Float], bytes: Int) {
            let fwd = try! DNNLConvolution(.forward, geometry: g, batch: batch, withBias: true, chunk: chunk)
            let bwdData = try! DNNLConvolution(.backwardData, geometry: g, batch: batch, withBias: false, chunk: chunk)
            let bwdWeights = try! DNNLConvolution(.backwardWeights, geometry: g, batch: batch, withBias: true, chunk: chunk)
            let bytes = [fwd, bwdData, bwdWeights].map(\.workspaceBytes).max()!
            let ws = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            defer { ws.deallocate() }
            let x = t.x.map { Float($0) }, w = t.w.map { Float($0) }, b = t.b.map { Float($0) }, r = t.r.map { Float($0) }
            var y = [Float](repeating: 0, count: t.r.count), dx = [Float](repeating: 0, count: t.x.count)
            var dw = [Float](repeating: 0, count: t.w.count), db = [Float](repeating: 0, count: g.outChannels)
            fwd.forward(x: x, weight: w, bias: b, y: &y, workspace: ws)
            bwdData.backwardData(dy: r, weight: w, dx: &dx, accumulate: false, workspace: ws)
            bwdWeights.backwardWeights(dy: r, x: x, weightGrad: &dw, biasGrad: &db, accumulate: false, workspace: ws)
            XCTAssertEqual(fwd.chunk, chunk)
            return (y, dx, dw, db, bytes)
        }
        let whole = run(chunk: batch), chunked = run(chunk: 2)
        // Each against Float64, not against each other: a chunk's primitive may block the sums
        // differently from the whole batch's.
        let expected = ConvCheck.expected(t)
        for (name, result) in [("whole", whole), ("chunks of 2", chunked)] {
            assertWithinBound(result.y.map(Double.init), expected.y, "\(name): forward")
            assertWithinBound(result.dx.map(Double.init), expected.dx, "\(name): backward-data")
            assertWithinBound(result.dw.map(Double.init), expected.dw, "\(name): dw summed over chunks")
            assertWithinBound(result.db.map(Double.init), expected.db, "\(name): db summed over chunks")
        }
        XCTAssertLessThan(chunked.bytes, whole.bytes, "a chunk of 2 needs less workspace than one of 5")
    }

    /// The kernel's accumulate contract: backward-weights over two calls with `accumulate` on the
    /// second equals one call over the batch (first call overwrites garbage); backward-data with
    /// `accumulate` adds onto dx.
    func testAccumulateFlagsMatchIm2colContract() {
        let g = Self.geometries[0], batch = 4
        let t = ConvKernelTests.Case(g, batch: batch, seed: 77)
        let ws = ConvWorkspace(g, engine: .dnnl)
        let x = ConvCheck.tensor(g.inputShape(batch: batch), t.x)
        let w = ConvCheck.tensor(g.weightShape, t.w)
        let dy = ConvCheck.tensor(g.outputShape(batch: batch), t.r)
        let fullW = Tensor(g.weightShape, .gradients, label: "dw")
        let fullB = Tensor([g.outChannels], .gradients, label: "db")
        Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: fullW, biasGrad: fullB, workspace: ws)
        let chunkW = Tensor(g.weightShape, .gradients, label: "dw", zeroed: false)
        chunkW.fill(42)
        let chunkB = Tensor([g.outChannels], .gradients, label: "db", zeroed: false)
        chunkB.fill(42)
        Conv2dKernel.backwardWeights(dy: dy.rows(0..<1), x: x.rows(0..<1), weightGrad: chunkW, biasGrad: chunkB, workspace: ws)
        Conv2dKernel.backwardWeights(dy: dy.rows(1..<4), x: x.rows(1..<4), weightGrad: chunkW, biasGrad: chunkB,
                                     workspace: ws, accumulate: true)
        // Both against Float64 (the chunked dW is the batch's sum in another order).
        let expected = ConvCheck.expected(t)
        assertWithinBound(ConvCheck.doubles(fullW), expected.dw, "whole-batch dW")
        assertWithinBound(ConvCheck.doubles(fullB), expected.db, "whole-batch db")
        assertWithinBound(ConvCheck.doubles(chunkW), expected.dw, "chunked dW")
        assertWithinBound(ConvCheck.doubles(chunkB), expected.db, "chunked db")
        // Weight gradient only (the sim head's conv has no bias).
        let onlyW = Tensor(g.weightShape, .gradients, label: "dw", zeroed: false)
        onlyW.fill(42)
        Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: onlyW, biasGrad: nil, workspace: ws)
        assertWithinBound(ConvCheck.doubles(onlyW), expected.dw, "dW without db")

        let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx")
        Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
        let twice = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx", zeroed: false)
        twice.copy(from: dx)
        Conv2dKernel.backwardData(dy: dy, weight: w, into: twice, workspace: ws, accumulate: true)
        assertWithinBound(ConvCheck.doubles(dx), expected.dx, "dx")
        assertWithinBound(ConvCheck.doubles(twice), expected.dxTwice, "accumulated dx")
    }

    /// oneDNN's scratchpad and reorder buffers are one `.workspace` allocation of the ledger,
    /// labelled "conv dnnl workspace", equal to the largest primitive's need, shared by views
    /// (one allocation for a block conv and a sim conv), freed with the workspace; the passes
    /// allocate nothing once their primitives exist.
    func testLedgerBooksTheScratchAsWorkspaceAndFreesIt() {
        let ledger = Ledger()
        let block = Self.geometries[0]
        let sim = ConvGeometry(inChannels: 7, outChannels: 7, height: 5, width: 7)
        do {
            let shared = ConvWorkspace(block, alsoServing: [sim], engine: .dnnl, ledger: ledger)
            XCTAssertEqual(ledger.current().bytes(.workspace), 0, "oneDNN geometries need no im2col memory")
            let view = shared.serving(sim)
            for (g, ws) in [(block, shared), (sim, view)] {
                let t = ConvKernelTests.Case(g, batch: 3, seed: 81)
                let x = ConvCheck.tensor(g.inputShape(batch: 3), t.x, ledger: ledger)
                let w = ConvCheck.tensor(g.weightShape, t.w, ledger: ledger)
                let y = Tensor(g.outputShape(batch: 3), .activations, label: "y", ledger: ledger)
                let dx = Tensor(g.inputShape(batch: 3), .activationGrads, label: "dx", ledger: ledger)
                let dw = Tensor(g.weightShape, .gradients, label: "dw", ledger: ledger)
                Conv2dKernel.forward(x: x, weight: w, bias: nil, into: y, workspace: ws)
                Conv2dKernel.backwardData(dy: y, weight: w, into: dx, workspace: ws)
                Conv2dKernel.backwardWeights(dy: y, x: x, weightGrad: dw, biasGrad: nil, workspace: ws)
                let allocations = ledger.operationCounts.allocations
                Conv2dKernel.forward(x: x, weight: w, bias: nil, into: y, workspace: ws)
                Conv2dKernel.backwardData(dy: y, weight: w, into: dx, workspace: ws)
                Conv2dKernel.backwardWeights(dy: y, x: x, weightGrad: dw, biasGrad: nil, workspace: ws)
                XCTAssertEqual(ledger.operationCounts.allocations, allocations, "reused primitives allocate nothing")
            }
            let cache = shared.dnnlCache!
            XCTAssertTrue(view.dnnlCache === cache)
            XCTAssertEqual(cache.count, 6)
            XCTAssertGreaterThan(cache.byteCount, 0)
            XCTAssertEqual(ledger.current().bytes(.workspace), cache.byteCount)
            XCTAssertEqual(shared.byteCount, cache.byteCount)
            XCTAssertEqual(ledger.peak().bytes(.workspace), cache.byteCount, "grown by free-then-allocate, never both at once")
        }
        XCTAssertEqual(ledger.current().bytes(.workspace), 0, "freed with the workspace")
    }

    /// The workspace stops growing with the batch: at vgg8b's 128->256 28x28 conv, batch 16, 32
    /// and 128 need the same bytes for every pass (a chunk of 13 images, tails reuse its buffers).
    func testWorkspaceIsIndependentOfBatchBeyondOneChunk() throws {
        let g = ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28)
        let chunk = DNNLConvolution.chunk(for: g, batch: 128)
        XCTAssertEqual(chunk, 13)
        for pass in ConvPass.allCases {
            let sizes = try [16, 32, 128].map { try DNNLConvolution(pass, geometry: g, batch: $0, withBias: pass != .backwardData).workspaceBytes }
            XCTAssertEqual(Set(sizes).count, 1, "\(pass): \(sizes)")
            // Activation buffers of one chunk + weights in oneDNN's layout + scratchpad: < 25 MiB.
            XCTAssertLessThan(sizes[0], 25 << 20, "\(pass)")
        }
    }
}
