import MemoryLedger
import NumericTestSupport
import Randomness
import Tensors
import XCTest
@testable import Layers

/// The conv sim head makes s a chunk of images at a time and writes dL/ds over s (free at last
/// use). Its results must be the very bits of the whole-batch computation with a separate
/// gradient buffer: the same loss, weight gradient and dh, for the std path (one chunk, several
/// chunks with a short last one, grouped GEMMs) and the flattened path (C <= 3); and the same
/// bits when the head keeps s whole instead of recomputing it (`keepsSimOutput`).
final class ConvSimHeadChunkTests: XCTestCase {
    // Same bits chunked and whole is a property of the im2col engine (the same grouped GEMMs in
    // the same order); oneDNN sums a chunked weight gradient in a different order (equal within
    // float rounding, DNNLConvolutionTests). These tests therefore run the im2col engine.
    override func setUp() { setenv("LAYERWISE_CONV_ENGINE", "im2col", 1) }
    override func tearDown() { unsetenv("LAYERWISE_CONV_ENGINE") }

    var labels: [Int32] = [0, 1, 0, 2, 1, 2]

    func check(channels: Int, side: Int, batch: Int = 6, keep: Bool = false) {
        labels = (0..<batch).map { Int32(($0 * 7 + $0 / 3) % 3) }
        let ledger = Ledger()
        var rng = Xoshiro256(seed: 11)
        let heads = LocalHeads<ConvMap>(loss: .sim, channels: channels, height: side, width: side, classes: 3, dimInDecoder: 64,
                              layer: 0, rng: &rng, ledger: ledger)
        heads.keepsSimOutput = keep
        var random = TestRandom(seed: 12)
        let h = Tensor([batch, channels, side, side], .activations, label: "h", ledger: ledger)
        h.copy(from: random.uniform(h.count).map { Float($0) })
        let dh = Tensor(h.shape, .activationGrads, label: "dh", ledger: ledger)
        ledger.resetPeaks()
        let before = ledger.current().total
        let result = labels.withUnsafeBufferPointer { heads.apply(h: h, labels: $0.baseAddress!, dh: dh, beta: 0.99) }
        if LocalHeads<ConvMap>.usesStd(channels: channels, height: side, width: side) && side >= 12 {
            // Kept, s whole (as many floats as h) is live at the head's peak; recomputed, one
            // chunk of it and the small (B, C) and (B, B) tensors.
            let headPeak = ledger.peak().total - before
            if keep {
                XCTAssertGreaterThanOrEqual(headPeak, h.count * 4)
            } else {
                XCTAssertLessThan(headPeak, h.count * 4)
            }
        }

        // Reference: the same kernels with ds in its own buffer.
        let weight = heads.simWeight!.value
        let workspace = ConvWorkspace(ConvGeometry(inChannels: channels, outChannels: channels, height: side, width: side), ledger: ledger)
        let s = Tensor(h.shape, .activations, label: "s", ledger: ledger)
        Conv2dKernel.forward(x: h, weight: weight, bias: nil, into: s, workspace: workspace)
        var target: Tensor? = labels.withUnsafeBufferPointer {
            SimilarityLoss.target(labels: $0.baseAddress!, batch: batch, classes: 3, projection: nil, layer: 0, ledger: ledger)
        }
        let scale = LossKind.sim.weights(beta: 0.99).sim
        let ds = Tensor(h.shape, .activationGrads, label: "ds", ledger: ledger)
        let loss: Float
        if LocalHeads<ConvMap>.usesStd(channels: channels, height: side, width: side) {
            let std = Tensor([batch, channels], .activations, label: "std", ledger: ledger)
            SpatialStdKernel.forward(x: s, into: std)
            var features: Tensor? = std
            let (l, dstd) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: 0, ledger: ledger)
            loss = l
            SpatialStdKernel.backward(ds: dstd, x: s, s: std, into: ds)
        } else {
            var features: Tensor? = s
            let (l, dflat) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: 0, ledger: ledger)
            loss = l
            ds.copy(from: dflat.array)
        }
        let weightGrad = Tensor(weight.shape, .gradients, label: "dw", ledger: ledger)
        Conv2dKernel.backwardWeights(dy: ds, x: h, weightGrad: weightGrad, biasGrad: nil, workspace: workspace)
        let dhReference = Tensor(h.shape, .activationGrads, label: "dh ref", ledger: ledger)
        Conv2dKernel.backwardData(dy: ds, weight: weight, into: dhReference, workspace: workspace, accumulate: true)

        XCTAssertEqual(result.sim.loss, loss)
        XCTAssertEqual(heads.simWeight!.grad!.array, weightGrad.array)
        XCTAssertEqual(dh.array, dhReference.array)
        XCTAssertTrue(dh.array.contains { $0 != 0 })
    }

    func testInPlaceSimGradientGivesTheSameBitsThroughTheStd() { check(channels: 4, side: 5) }

    /// 12x12 maps (one image per GEMM), 40 images: chunks of 16, 16 and 8.
    func testChunkedSimHeadGivesTheSameBitsAsTheWholeBatch() { check(channels: 4, side: 12, batch: 40) }

    /// 3x3 maps group 45 images per GEMM: 50 images are chunks of 45 and 5.
    func testChunksFollowTheGroupedGemms() { check(channels: 5, side: 3, batch: 50) }

    func testInPlaceSimGradientGivesTheSameBitsWhenFlattened() { check(channels: 3, side: 4) }

    /// s kept whole (no recompute): the same bits, over chunks of 16, 16 and 8 and grouped GEMMs.
    func testKeptSimOutputGivesTheSameBits() {
        check(channels: 4, side: 12, batch: 40, keep: true)
        check(channels: 5, side: 3, batch: 50, keep: true)
        check(channels: 3, side: 4, keep: true)
    }
}
