import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest

/// `Network.chunkSize`: whole training steps of local networks (the mlp, a tiny vgg8b) with
/// chunked blocks equal the unchunked steps; backprop mode ignores it.
final class ChunkedNetworkTests: XCTestCase {
    let batch = 6, classes = 3

    private func tinyVGG(_ loss: LossKind) -> ModelSpec {
        var s = ModelSpec()
        s.kind = .vgg8b
        s.inputShape = [1, 16, 16]
        s.classes = classes
        s.numHidden = 8
        s.featMult = 1 / 32
        s.dimInDecoder = 32
        s.loss = loss
        s.beta = 0.9
        s.dropout = 0.2
        s.nonlinearity = loss == .backprop ? .relu : .leakyRelu
        return s
    }

    private func mlp(_ loss: LossKind) -> ModelSpec {
        var s = ModelSpec()
        s.inputShape = [10, 1, 1]
        s.classes = classes
        s.numLayers = 3
        s.numHidden = 9
        s.loss = loss
        s.beta = 0.9
        s.dropout = 0.2
        return s
    }

    /// Two steps (the second with non-zero pred heads and output layer) of a network with and
    /// without chunks: every parameter, running statistic and loss agrees.
    private func checkSteps(_ spec: ModelSpec, chunk: Int, file: StaticString = #filePath, line: UInt = #line) {
        var sgd = OptimizerSettings()
        sgd.kind = .sgd
        let reference = Network(spec: spec, seed: 3, optimizer: sgd, ledger: Ledger())
        let chunked = Network(spec: spec, seed: 3, optimizer: sgd, ledger: Ledger())
        chunked.chunkSize = chunk
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: Ledger(), zeroed: false)
        var rng = Xoshiro256(seed: 8)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        let labels: [Int32] = (0..<batch).map { Int32($0 % classes) }
        for step in 0..<2 {
            let (a, b) = labels.withUnsafeBufferPointer {
                (reference.trainStep(images: images, labels: $0.baseAddress!, lr: 0.5, step: step),
                 chunked.trainStep(images: images, labels: $0.baseAddress!, lr: 0.5, step: step))
            }
            XCTAssertEqual(Double(b.outputLoss), Double(a.outputLoss), accuracy: 1e-5, "step \(step) output loss", file: file, line: line)
            XCTAssertEqual(b.correct, a.correct, file: file, line: line)
            for (x, y) in zip(b.blocks, a.blocks) {
                XCTAssertEqual(Double(x.loss), Double(y.loss), accuracy: 1e-5 * max(1, Double(abs(y.loss))), "step \(step) block loss", file: file, line: line)
            }
        }
        for (p, q) in zip(chunked.allParameters, reference.allParameters) {
            let error = ChunkedStepComparison.relativeError(p.value.array, q.value.array, scale: max(1, ChunkedStepComparison.maxAbs(q.value.array)))
            XCTAssertLessThanOrEqual(error, 1e-5, "\(p.name)", file: file, line: line)
        }
        let stats = { (n: Network) in n.convBlocks.flatMap { [$0.runningMean.array, $0.runningVar.array] } + n.blocks.flatMap { [$0.runningMean.array, $0.runningVar.array] } }
        for (s, r) in zip(stats(chunked), stats(reference)) {
            XCTAssertLessThanOrEqual(ChunkedStepComparison.relativeError(s, r, scale: max(1, ChunkedStepComparison.maxAbs(r))), 1e-5,
                                     "running statistics", file: file, line: line)
        }
    }

    func testChunkedVGGStepsEqualWholeBatchSteps() {
        for loss in [LossKind.predsim, .predsimBpf] { checkSteps(tinyVGG(loss), chunk: 4) }
    }

    /// Conv widths x1/8 (16 32 32 64 64 64): the first block's hand-off (16 channels at 16x16
    /// from one) is cheap to recompute, so the second block reads it as a `RecomputedHandOff`.
    func testChunkedVGGStepsWithARecomputedHandOffEqualWholeBatchSteps() {
        var spec = tinyVGG(.predsim)
        spec.featMult = 1 / 8
        let probe = Network(spec: spec, seed: 3, ledger: Ledger())
        XCTAssertTrue(probe.convBlocks[0].handOffIsCheapToRecompute)
        XCTAssertFalse(probe.convBlocks[1].handOffIsCheapToRecompute)
        checkSteps(spec, chunk: 4)
    }

    func testChunkedMLPStepsEqualWholeBatchSteps() {
        for loss in [LossKind.predsim, .pred, .simBpf] { checkSteps(mlp(loss), chunk: 4) }
    }

    func testBackpropIgnoresTheChunkSize() {
        checkSteps(tinyVGG(.backprop), chunk: 2)
    }
}
