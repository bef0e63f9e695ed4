import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// The im2col engine (the `.dnnl` engine has DNNLConvolutionTests): every workspace here is
/// made with `engine: .im2col`. Every grouping of images per GEMM is compared with the Float64
/// direct convolution within the rounding bound of each element's sum (`ConvCheck.expected`),
/// not with another grouping: groupings sum in different orders.
final class ConvKernelTests: XCTestCase {
    /// Direct convolution in Float64, seven loops, no im2col: the reference the kernel must match.
    /// x (B, C, H, W), w (OC, C, k, k), b (OC) -> (B, OC, H', W').
    static func referenceConv(_ x: [Double], _ w: [Double], _ bias: [Double]?, _ g: ConvGeometry, batch: Int) -> [Double] {
        let (c, h, wd, k, p) = (g.inChannels, g.height, g.width, g.kernel, g.padding)
        let (oc, oh, ow) = (g.outChannels, g.outHeight, g.outWidth)
        var y = [Double](repeating: 0, count: batch * oc * oh * ow)
        for n in 0..<batch {
            for o in 0..<oc {
                for r in 0..<oh {
                    for s in 0..<ow {
                        var acc = bias?[o] ?? 0
                        for ci in 0..<c {
                            for i in 0..<k {
                                for j in 0..<k {
                                    let ih = r + i - p, iw = s + j - p
                                    guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                                    acc += x[((n * c + ci) * h + ih) * wd + iw] * w[((o * c + ci) * k + i) * k + j]
                                }
                            }
                        }
                        y[((n * oc + o) * oh + r) * ow + s] = acc
                    }
                }
            }
        }
        return y
    }

    struct Case {
        var g: ConvGeometry
        var batch: Int
        var x: [Double], w: [Double], b: [Double], r: [Double]
        init(_ g: ConvGeometry, batch: Int, seed: UInt64) {
            var rng = ConvCheck.Random(seed: seed)
            self.g = g
            self.batch = batch
            x = rng.uniform(batch * g.inChannels * g.inSpatial)
            w = rng.uniform(g.outChannels * g.patchSize, -0.5, 0.5)
            b = rng.uniform(g.outChannels)
            r = rng.uniform(batch * g.outChannels * g.outSpatial)
        }
    }

    static let geometries = [
        ConvGeometry(inChannels: 3, outChannels: 4, height: 5, width: 7, kernel: 3, padding: 1),
        ConvGeometry(inChannels: 3, outChannels: 4, height: 5, width: 7, kernel: 1, padding: 0),
        ConvGeometry(inChannels: 3, outChannels: 4, height: 5, width: 7, kernel: 3, padding: 0),
        ConvGeometry(inChannels: 2, outChannels: 3, height: 4, width: 3, kernel: 5, padding: 2),
        ConvGeometry(inChannels: 1, outChannels: 2, height: 1, width: 1, kernel: 3, padding: 1),
    ]

    /// Images per GEMM to test: one at a time, pairs (batch 3 leaves a group of one), the default.
    static let groupings: [Int?] = [1, 2, nil]

    func testForwardMatchesDirectConvolution() {
        let batch = 3
        for (n, g) in Self.geometries.enumerated() {
            for group in Self.groupings {
                let t = Case(g, batch: batch, seed: 10 + UInt64(n))
                let ws = ConvWorkspace(g, imagesPerGemm: group, engine: .im2col)
                let y = Tensor(g.outputShape(batch: batch), .activations, label: "y", zeroed: false)
                y.fill(.nan)  // the kernel must write every output element
                Conv2dKernel.forward(x: ConvCheck.tensor(g.inputShape(batch: batch), t.x),
                                     weight: ConvCheck.tensor(g.weightShape, t.w),
                                     bias: ConvCheck.tensor([g.outChannels], t.b), into: y, workspace: ws)
                let expected = ConvCheck.expected(t)
                assertWithinBound(ConvCheck.doubles(y), expected.y, "\(g) G \(ws.imagesPerGemm) forward")
                let exact = expected.y.map(\.exact)
                XCTAssertGreaterThan(ConvCheck.norm(exact), 0.1)
            }
        }
    }

    func testForwardWithoutBias() {
        let g = Self.geometries[0]
        let t = Case(g, batch: 3, seed: 3)
        let expected = ConvCheck.expected(t)
        for group in Self.groupings {
            let y = Tensor(g.outputShape(batch: 3), .activations, label: "y", zeroed: false)
            y.fill(.nan)
            Conv2dKernel.forward(x: ConvCheck.tensor(g.inputShape(batch: 3), t.x), weight: ConvCheck.tensor(g.weightShape, t.w),
                                 bias: nil, into: y, workspace: ConvWorkspace(g, imagesPerGemm: group, engine: .im2col))
            assertWithinBound(ConvCheck.doubles(y), expected.yWithoutBias, "no bias")
            // Broken variant: a bias added where there is none.
            if group == nil {
                let withBias = Tensor(g.outputShape(batch: 3), .activations, label: "y")
                Conv2dKernel.forward(x: ConvCheck.tensor(g.inputShape(batch: 3), t.x), weight: ConvCheck.tensor(g.weightShape, t.w),
                                     bias: ConvCheck.tensor([g.outChannels], t.b), into: withBias,
                                     workspace: ConvWorkspace(g, engine: .im2col))
                assertBoundCatches(ConvCheck.doubles(withBias), expected.yWithoutBias, "a forward adding a bias")
            }
        }
    }

    /// L = sum(conv(x, W, b) * R): dx, dW and db against the Float64 gradients (written from
    /// the definition in `DNNLConvolutionTests.referenceBackward`) within the rounding bound of
    /// each element's sum, on every test geometry and grouping. L is linear in each argument, so
    /// the exact gradient is the reference itself: no finite-difference error to allow for.
    func testGradientsMatchFloat64WithinTheRoundingBound() {
        for (n, g) in Self.geometries.enumerated() {
          let batch = 3
          let t = Case(g, batch: batch, seed: 20 + UInt64(n))
          let expected = ConvCheck.expected(t)
          for group in Self.groupings {
            let ws = ConvWorkspace(g, imagesPerGemm: group, engine: .im2col)
            let x = ConvCheck.tensor(g.inputShape(batch: batch), t.x)
            let w = ConvCheck.tensor(g.weightShape, t.w)
            let dy = ConvCheck.tensor(g.outputShape(batch: batch), t.r)
            let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx", zeroed: false)
            dx.fill(.nan)
            let dw = Tensor(g.weightShape, .gradients, label: "dw", zeroed: false)
            dw.fill(.nan)
            let db = Tensor([g.outChannels], .gradients, label: "db", zeroed: false)
            db.fill(.nan)
            Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
            Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: db, workspace: ws)
            let what = "\(g) G \(ws.imagesPerGemm)"
            assertWithinBound(ConvCheck.doubles(dx), expected.dx, "\(what) dx")
            assertWithinBound(ConvCheck.doubles(dw), expected.dw, "\(what) dW")
            assertWithinBound(ConvCheck.doubles(db), expected.db, "\(what) db")
            XCTAssertGreaterThan(ConvCheck.norm(expected.dw.map(\.exact)), 0.1, "\(what): dW must not be (nearly) zero")
          }
          // Broken variant: the weight gradient from dy read one pixel off (each x paired with
          // its neighbour's dy).
          let shifted = ConvCheck.tensor(g.outputShape(batch: batch), Array(t.r.dropFirst()) + [t.r[0]])
          let wrong = Tensor(g.weightShape, .gradients, label: "dw")
          Conv2dKernel.backwardWeights(dy: shifted, x: ConvCheck.tensor(g.inputShape(batch: batch), t.x), weightGrad: wrong,
                                       biasGrad: nil, workspace: ConvWorkspace(g, engine: .im2col))
          assertBoundCatches(ConvCheck.doubles(wrong), expected.dw, "\(g): dW from dy one pixel off")
        }
    }

    /// Two chunks with `accumulate` give the full batch's weight gradients, and backward-data
    /// with `accumulate` adds onto what dx holds. The chunked dW is one sum over the batch in
    /// another order: it is compared with the Float64 value within the same bound as the
    /// whole-batch dW, not with the whole-batch result.
    func testAccumulateFlags() {
        let g = Self.geometries[0]
        let batch = 4
        let t = Case(g, batch: batch, seed: 7)
        let ws = ConvWorkspace(g, imagesPerGemm: 2, engine: .im2col)
        let x = ConvCheck.tensor(g.inputShape(batch: batch), t.x)
        let w = ConvCheck.tensor(g.weightShape, t.w)
        let dy = ConvCheck.tensor(g.outputShape(batch: batch), t.r)
        let fullW = Tensor(g.weightShape, .gradients, label: "dw")
        let fullB = Tensor([g.outChannels], .gradients, label: "db")
        Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: fullW, biasGrad: fullB, workspace: ws)
        let chunkW = Tensor(g.weightShape, .gradients, label: "dw", zeroed: false)
        chunkW.fill(42)  // overwritten by the first chunk
        let chunkB = Tensor([g.outChannels], .gradients, label: "db", zeroed: false)
        chunkB.fill(42)
        Conv2dKernel.backwardWeights(dy: dy.rows(0..<1), x: x.rows(0..<1), weightGrad: chunkW, biasGrad: chunkB, workspace: ws)
        Conv2dKernel.backwardWeights(dy: dy.rows(1..<4), x: x.rows(1..<4), weightGrad: chunkW, biasGrad: chunkB,
                                     workspace: ws, accumulate: true)
        let expected = ConvCheck.expected(t)
        assertWithinBound(ConvCheck.doubles(fullW), expected.dw, "whole-batch dW")
        assertWithinBound(ConvCheck.doubles(fullB), expected.db, "whole-batch db")
        assertWithinBound(ConvCheck.doubles(chunkW), expected.dw, "chunked dW")
        assertWithinBound(ConvCheck.doubles(chunkB), expected.db, "chunked db")
        // Broken variant: the second chunk overwriting the first instead of adding to it.
        let lastChunkOnly = Tensor(g.weightShape, .gradients, label: "dw")
        Conv2dKernel.backwardWeights(dy: dy.rows(1..<4), x: x.rows(1..<4), weightGrad: lastChunkOnly, biasGrad: nil, workspace: ws)
        assertBoundCatches(ConvCheck.doubles(lastChunkOnly), expected.dw, "dW of the last chunk only")

        let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx")
        Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: ws)
        let twice = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx", zeroed: false)
        twice.copy(from: dx)
        Conv2dKernel.backwardData(dy: dy, weight: w, into: twice, workspace: ws, accumulate: true)
        assertWithinBound(ConvCheck.doubles(dx), expected.dx, "dx")
        assertWithinBound(ConvCheck.doubles(twice), expected.dxTwice, "accumulated dx")
    }

    /// The workspace is G images' column matrices (+ staging): the ledger's `.workspace` peak over
    /// a forward and a full backward is the same at batch 2 and batch 8 and equals the formula,
    /// for a small map (G = 12 by default; G = 3 forced, so batch 8 runs groups of 3, 3, 2) and a
    /// large one (G = 1).
    func testWorkspacePeakIsIndependentOfBatchAndEqualsBound() {
        let small = ConvGeometry(inChannels: 3, outChannels: 4, height: 5, width: 7)
        let large = ConvGeometry(inChannels: 2, outChannels: 3, height: 12, width: 12)
        for (g, group) in [(small, nil), (small, 3), (large, nil)] as [(ConvGeometry, Int?)] {
            var peaks: [Int] = []
            for batch in [2, 8] {
                peaks.append(Self.workspacePeak(g, imagesPerGemm: group, batch: batch))
            }
            XCTAssertEqual(peaks[0], peaks[1], "\(g) G \(group.map(String.init) ?? "default")")
            XCTAssertEqual(peaks[0], ConvWorkspace.bytes(g, imagesPerGemm: group, engine: .im2col))
        }
        // 35 output positions < 128: G = ceil(400 / 35) = 12 images per GEMM, with staging.
        XCTAssertEqual(ConvWorkspace.defaultImagesPerGemm(small), 12)
        XCTAssertEqual(ConvWorkspace.bytes(small, engine: .im2col), 4 * (3 * 3 * 3 + 4) * 12 * (5 * 7))
        XCTAssertEqual(ConvWorkspace.bytes(small, imagesPerGemm: 3, engine: .im2col), 4 * (3 * 3 * 3 + 4) * 3 * (5 * 7))
        // 144 positions: one image per GEMM, no staging.
        XCTAssertEqual(ConvWorkspace.defaultImagesPerGemm(large), 1)
        XCTAssertEqual(ConvWorkspace.bytes(large, engine: .im2col), 4 * (2 * 3 * 3) * 144)
    }

    /// Forward + backward-data + backward-weights in a fresh ledger; returns the `.workspace`
    /// peak and checks that the passes themselves allocate nothing.
    static func workspacePeak(_ g: ConvGeometry, imagesPerGemm group: Int?, batch: Int) -> Int {
        let ledger = Ledger()
        var rng = ConvCheck.Random(seed: UInt64(batch))
        let x = ConvCheck.tensor(g.inputShape(batch: batch), rng.uniform(batch * g.inChannels * g.inSpatial), ledger: ledger)
        let w = ConvCheck.tensor(g.weightShape, rng.uniform(g.outChannels * g.patchSize), .weights, ledger: ledger)
        let b = ConvCheck.tensor([g.outChannels], rng.uniform(g.outChannels), .weights, ledger: ledger)
        let y = Tensor(g.outputShape(batch: batch), .activations, label: "y", ledger: ledger)
        let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "dx", ledger: ledger)
        let dw = Tensor(g.weightShape, .gradients, label: "dw", ledger: ledger)
        let db = Tensor([g.outChannels], .gradients, label: "db", ledger: ledger)
        XCTAssertEqual(ledger.current().bytes(.workspace), 0)
        ledger.enter(.forward)
        let ws = ConvWorkspace(g, imagesPerGemm: group, engine: .im2col, layer: 0, ledger: ledger)
        let allocations = ledger.operationCounts.allocations
        Conv2dKernel.forward(x: x, weight: w, bias: b, into: y, workspace: ws)
        ledger.enter(.backward)
        Conv2dKernel.backwardData(dy: y, weight: w, into: dx, workspace: ws)
        Conv2dKernel.backwardWeights(dy: y, x: x, weightGrad: dw, biasGrad: db, workspace: ws)
        ledger.enter(.idle)
        XCTAssertEqual(ledger.operationCounts.allocations, allocations, "the passes allocate nothing")
        XCTAssertEqual(ws.byteCount, ledger.peak().bytes(.workspace))
        return max(ledger.phasePeak(.forward, .workspace), ledger.phasePeak(.backward, .workspace),
                   ledger.peak().bytes(.workspace))
    }

    func testGeometryAndBoundAtVggShapes() {
        let g = ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28)
        XCTAssertEqual(g.outHeight, 28)
        XCTAssertEqual(g.outWidth, 28)
        XCTAssertEqual(ConvWorkspace.defaultImagesPerGemm(g), 1)
        XCTAssertEqual(ConvWorkspace.bytes(g, engine: .im2col), 4 * 1152 * 784)
        XCTAssertEqual(ConvWorkspace.bytes(g, engine: .dnnl), 0, "oneDNN's memory is its cache's")
        let small = ConvGeometry(inChannels: 512, outChannels: 512, height: 3, width: 3)
        XCTAssertEqual(ConvWorkspace.defaultImagesPerGemm(small), 45)
        XCTAssertEqual(ConvWorkspace.bytes(small, engine: .im2col), 4 * (4608 + 512) * 45 * 9)
        let valid = ConvGeometry(inChannels: 3, outChannels: 4, height: 5, width: 7, kernel: 3, padding: 0)
        XCTAssertEqual([valid.outHeight, valid.outWidth], [3, 5])
        XCTAssertEqual(ConvWorkspace.bytes(valid, imagesPerGemm: 1, engine: .im2col), 4 * 27 * 15)
        XCTAssertEqual(ConvWorkspace.bytes(valid, imagesPerGemm: 2, engine: .im2col), 4 * (27 + 4) * 2 * 15)
        XCTAssertEqual(ConvWorkspace(valid, imagesPerGemm: 2, engine: .im2col).byteCount, ConvWorkspace.bytes(valid, imagesPerGemm: 2, engine: .im2col))
    }
}
