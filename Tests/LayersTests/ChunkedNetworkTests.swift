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

    /// How the chunked twin's batch is broken, to show that the tolerance catches a broken step
    /// (the broken variants of the chunked comparison).
    enum Fault {
        case none
        /// Rows 0 and batch-1 swapped in the images only: a chunk read at the wrong rows.
        case chunkReadAtWrongRows
        /// The first chunk's images in place of the last chunk's: one chunk counted twice in
        /// every batch statistic and another left out.
        case chunkLeftOut(chunk: Int)
    }

    /// Two steps (the second with non-zero pred heads and output layer) of a network with and
    /// without chunks. Returns the worst difference, relative to each compared quantity's scale,
    /// over losses, parameters and running statistics.
    private func worstDifference(_ spec: ModelSpec, chunk: Int, fault: Fault = .none, file: StaticString = #filePath, line: UInt = #line) -> Double {
        var sgd = OptimizerSettings()
        sgd.kind = .sgd
        let reference = Network(spec: spec, seed: 3, optimizer: sgd, ledger: Ledger())
        let chunked = Network(spec: spec, seed: 3, optimizer: sgd, ledger: Ledger())
        chunked.chunkSize = chunk
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: Ledger(), zeroed: false)
        var rng = Xoshiro256(seed: 8)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        let chunkedImages = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: Ledger(), zeroed: false)
        chunkedImages.copy(from: images)
        let row = images.count / batch
        switch fault {
        case .none: break
        case .chunkReadAtWrongRows:
            for i in 0..<row { (chunkedImages.pointer[i], chunkedImages.pointer[(batch - 1) * row + i]) = (images.pointer[(batch - 1) * row + i], images.pointer[i]) }
        case .chunkLeftOut(let c):
            for i in 0..<(c * row) { chunkedImages.pointer[(batch - c) * row + i] = images.pointer[i] }
        }
        let labels: [Int32] = (0..<batch).map { Int32($0 % classes) }
        var worst = 0.0
        for step in 0..<2 {
            let (a, b) = labels.withUnsafeBufferPointer {
                (reference.trainStep(images: images, labels: $0.baseAddress!, lr: 0.5, step: step),
                 chunked.trainStep(images: chunkedImages, labels: $0.baseAddress!, lr: 0.5, step: step))
            }
            worst = max(worst, abs(Double(b.outputLoss) - Double(a.outputLoss)) / max(1, abs(Double(a.outputLoss))))
            if case .none = fault { XCTAssertEqual(b.correct, a.correct, "step \(step) correct", file: file, line: line) }
            for (x, y) in zip(b.blocks, a.blocks) {
                worst = max(worst, abs(Double(x.loss) - Double(y.loss)) / max(1, abs(Double(y.loss))))
            }
        }
        for (p, q) in zip(chunked.allParameters, reference.allParameters) {
            let error = ChunkedStepComparison.relativeError(p.value.array, q.value.array, scale: max(1, ChunkedStepComparison.maxAbs(q.value.array)))
            if case .none = fault, error > stepTolerance(spec) { XCTFail("\(p.name): \(error)", file: file, line: line) }
            worst = max(worst, error)
        }
        let stats = { (n: Network) in n.convBlocks.flatMap { [$0.runningMean.array, $0.runningVar.array] } + n.blocks.flatMap { [$0.runningMean.array, $0.runningVar.array] } }
        for (s, r) in zip(stats(chunked), stats(reference)) {
            worst = max(worst, ChunkedStepComparison.relativeError(s, r, scale: max(1, ChunkedStepComparison.maxAbs(r))))
        }
        return worst
    }

    /// Twice the rounding bound of two network steps (`ChunkedStepComparison.tolerance`): block
    /// k's step carries the forward errors of the blocks before it; in backprop mode the
    /// backward crosses every block too, so each block counts twice. The longest sums are the
    /// first block's BatchNorm statistics and weight gradient (over B H W, or the input's
    /// features), the similarity's B^2 mean and the -bpf decoder's projection. 3.3e-3 for the
    /// tiny vgg8b in local mode.
    private func stepTolerance(_ spec: ModelSpec) -> Double {
        let probe = Network(spec: spec, seed: 3, ledger: Ledger())
        let spatial = probe.convBlocks.isEmpty ? 1 : spec.inputShape[1] * spec.inputShape[2]
        let longest = max(batch * spatial, batch * batch, LossKind.projectionSize, spec.inputShape.reduce(1, *) + 1)
        let blocks = (probe.convBlocks.count + probe.blocks.count + 1) * (spec.loss == .backprop ? 2 : 1)
        return ChunkedStepComparison.tolerance(longestSum: longest, blocks: blocks, steps: 2)
    }

    /// The chunked twin agrees with the whole batch within the tolerance, and the same comparison
    /// fails when the chunked twin's batch is broken: the bound catches a broken step.
    private func checkSteps(_ spec: ModelSpec, chunk: Int, file: StaticString = #filePath, line: UInt = #line) {
        let tolerance = stepTolerance(spec)
        XCTAssertLessThanOrEqual(worstDifference(spec, chunk: chunk, file: file, line: line), tolerance, file: file, line: line)
        for fault in [Fault.chunkReadAtWrongRows, .chunkLeftOut(chunk: min(chunk, batch - 1))] {
            XCTAssertGreaterThan(worstDifference(spec, chunk: chunk, fault: fault, file: file, line: line), tolerance,
                                 "\(fault) must break the comparison", file: file, line: line)
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
