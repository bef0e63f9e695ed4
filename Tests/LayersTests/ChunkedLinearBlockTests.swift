import Layers
import MemoryLedger
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// `HiddenBlock<LinearMap>.trainLocal(..., chunk:)`: a local step computed in micro-batches with
/// recomputation equals the whole-batch step, and its activation memory scales with the chunk.
final class ChunkedLinearBlockTests: XCTestCase {
    let batch = 10, inFeatures = 7, outFeatures = 12, classes = 4
    var labels: [Int32] { (0..<batch).map { Int32(($0 * 7) % classes) } }

    private func makeBlock(_ loss: LossKind, index: Int = 1, ledger: Ledger = Ledger(), settings: OptimizerSettings = ChunkedStepComparison.sgd) -> HiddenBlock<LinearMap> {
        var rng = Xoshiro256(seed: 17)
        let block = HiddenBlock<LinearMap>(index: index, inFeatures: inFeatures, outFeatures: outFeatures, classes: classes, loss: loss,
                                beta: loss.defaultBeta == 0.99 ? 0.7 : 0.3,  // both terms weigh in
                                nonlinearity: loss == .pred ? .relu : .leakyRelu, dropout: 0.3, rng: &rng, ledger: ledger)
        block.optimizer = Optimizer(block.localParameters, settings: settings, ledger: ledger)
        // Heads that start at zero would give the block no gradient on the first step.
        var init_ = Xoshiro256(seed: 99)
        for p in block.heads!.parameters { p.initUniform(bound: 0.5, rng: &init_) }
        return block
    }

    private func input(_ ledger: Ledger = .shared) -> Tensor {
        let x = Tensor([batch, inFeatures], .activations, layer: 0, label: "block input", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: 5)
        // A large common offset: the BatchNorm moments must survive E[z^2] - E[z]^2.
        for i in 0..<x.count { x.pointer[i] = rng.uniform(-1, 1) + 3 }
        return x
    }

    private func step(_ block: HiddenBlock<LinearMap>, _ x: Tensor, chunk: Int?) -> (handOff: Tensor, stats: BlockStepStats) {
        labels.withUnsafeBufferPointer { block.trainLocal(x, labels: $0.baseAddress!, lr: 1, dropoutSeed: 4242, chunk: chunk) }
    }

    private func checkChunkedEqualsWholeBatch(_ loss: LossKind, file: StaticString = #filePath, line: UInt = #line) {
        let reference = makeBlock(loss)
        let before = reference.localParameters.map { $0.value.array }
        let x = input()
        let whole = step(reference, x, chunk: nil)
        for chunk in [1, 3, batch / 2, batch] {
            let block = makeBlock(loss)
            let chunked = step(block, x, chunk: chunk)
            ChunkedStepComparison.assertSame(
                what: "\(loss) chunk \(chunk)", tolerance: stepTolerance, parameters: block.localParameters, before: before,
                reference: reference.localParameters.map { $0.value.array },
                runningStats: [block.runningMean.array, block.runningVar.array],
                referenceRunningStats: [reference.runningMean.array, reference.runningVar.array],
                handOff: chunked.handOff, referenceHandOff: whole.handOff, stats: chunked.stats, referenceStats: whole.stats,
                file: file, line: line)
        }
    }

    /// Twice the rounding bound of one step (`ChunkedStepComparison.tolerance`): the longest sums
    /// are the -bpf decoder's projection (128) and the similarity's B^2 mean.
    private var stepTolerance: Double {
        ChunkedStepComparison.tolerance(longestSum: max(batch * batch, LossKind.projectionSize, inFeatures + 1))
    }

    func testChunkedPredStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.pred) }
    func testChunkedSimStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.sim) }
    func testChunkedPredsimStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.predsim) }
    func testChunkedPredsimBpfStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.predsimBpf) }
    func testChunkedPredBpfStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.predBpf) }
    func testChunkedSimBpfStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.simBpf) }

    /// Adam too (the recipe's optimizer), on everything except the biases before BatchNorm,
    /// whose gradient is zero in exact arithmetic: Adam's first step turns its rounding noise
    /// into +-lr in either twin. Adam's first update lr g / (|g| + eps) = lr sign(g) (1 - eps / |g|)
    /// moves by lr eps |delta g| / g^2 for an error delta g, less than the SGD bound wherever
    /// |g| > eps: the step tolerance holds.
    func testChunkedStepWithAdamMovesEveryOtherParameterTheSame() {
        var adam = OptimizerSettings()
        adam.kind = .adam
        let reference = makeBlock(.predsim, settings: adam), block = makeBlock(.predsim, settings: adam)
        let x = input()
        _ = step(reference, x, chunk: nil)
        _ = step(block, x, chunk: 3)
        for (p, r) in zip(block.localParameters, reference.localParameters) where p !== block.bias {
            XCTAssertLessThanOrEqual(ChunkedStepComparison.relativeError(p.value.array, r.value.array, scale: 1), stepTolerance, p.name)
        }
    }

    /// Each twin against the exact step, not only against each other: with SGD's first step
    /// (update = lr g, lr 1) the whole batch's and each chunked step's updates are minus the
    /// gradient of the Float64 local loss 0.3 CE(pred(h)) + 0.7 L_sim(sim(h)) (h before dropout),
    /// each within `BlockStepBound.relative` of the block's largest gradient entry plus the
    /// finite-difference metric.
    func testChunkedAndWholeBatchPredsimStepsEachMatchTheFloat64Gradient() {
        let x = input()
        let xValues = x.doubles
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let before = makeBlock(.predsim).localParameters.map { $0.value.doubles }
        func localLoss(_ v: [[Double]]) -> Double {
            let z = Reference.linear(xValues, batch: batch, weight: v[0], outFeatures: outFeatures, bias: v[1])
            let bn = Reference.batchNormTraining(z, batch: batch, channels: outFeatures, spatial: 1, gamma: v[2], beta: v[3])
            let h = Reference.leakyRelu(bn.out, slope: 0.01)
            return 0.3 * HeadReference.predLoss(h: h, weight: v[4], bias: v[5], labels: labels)
                + 0.7 * HeadReference.simLoss(h: h, weight: v[6], batch: batch, target: target)
        }
        let gradients = before.indices.map { i in
            numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return localLoss(all)
            }
        }
        let scale = gradients.map(maxAbs).max()!
        let bound = BlockStepBound.relative(longestSum: batch * batch) * scale
            + BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: batch * batch)
        func worstError(_ x: Tensor, chunk: Int?) -> (error: Double, name: String) {
            let block = makeBlock(.predsim)
            _ = step(block, x, chunk: chunk)
            return block.localParameters.enumerated().map { i, p in
                (zip(subtract(before[i], p.value.doubles), gradients[i]).map { abs($0 - $1) }.max()!, p.name)
            }.max { $0.error < $1.error }!
        }
        for chunk in [nil, 1, 3] as [Int?] {
            let worst = worstError(x, chunk: chunk)
            XCTAssertLessThanOrEqual(worst.error, bound, "chunk \(chunk.map(String.init) ?? "none"): \(worst.name)")
        }
        // Broken variant: a chunked step that reads its first and last rows swapped (each image
        // paired with another's label).
        let swapped = input()
        let row = inFeatures
        for i in 0..<row { (swapped.pointer[i], swapped.pointer[(batch - 1) * row + i]) = (x.pointer[(batch - 1) * row + i], x.pointer[i]) }
        XCTAssertGreaterThan(worstError(swapped, chunk: 3).error, bound, "a chunked step with rows swapped passes the bound")
    }

    // MARK: memory

    /// Bytes of `.activations` at their highest over a chunked step of a block run alone on a
    /// fresh ledger (its input booked as activations of the block before it).
    private func activationPeak(_ loss: LossKind, chunk: Int?) -> (peak: Int, input: Int, left: Int) {
        let ledger = Ledger()
        let block = makeBlock(loss, ledger: ledger)
        let x = input(ledger)
        ledger.resetPeaks()
        let handOff = step(block, x, chunk: chunk).handOff
        let peak = Phase.allCases.map { ledger.phasePeak($0, .activations) }.max()!
        let left = ledger.current().bytes(.activations)
        withExtendedLifetime(handOff) {}
        return (peak, x.byteCount, left)
    }

    /// The activation peak of a chunked Linear step, from shapes: the input (B, in); the
    /// chunk's x-hat and h (c, F); mean and invStd (F); the heads' summaries (pred logits (B, K),
    /// decoder logits (B, 128)), kept as their gradients to the end; then either the sim loss
    /// (its features (B, F), their normalised copy (B, F) and row norms (B)) or, without a sim
    /// head, the hand-off (B, F) of the last pass.
    private func expectedChunkedActivationPeak(_ loss: LossKind, chunk: Int) -> Int {
        let b = batch, f = outFeatures
        var floats = b * inFeatures + 2 * chunk * f + 2 * f
        if loss.usesPred { floats += loss.isBackpropFree ? b * LossKind.projectionSize : b * classes }
        floats += loss.usesSim ? 2 * b * f + b : b * f
        return floats * MemoryLayout<Float>.stride
    }

    func testChunkedActivationPeakEqualsTheShapesAndScalesWithTheChunk() {
        for loss in [LossKind.pred, .sim, .predsim, .predsimBpf] {
            let whole = activationPeak(loss, chunk: nil)
            for chunk in [1, 3, 5] {
                let measured = activationPeak(loss, chunk: chunk)
                XCTAssertEqual(measured.peak, expectedChunkedActivationPeak(loss, chunk: chunk), "\(loss) chunk \(chunk)")
                // The whole batch holds x-hat and h (B, F) each; chunks below B / 2 hold two chunk rows
                // and the hand-off instead. The -bpf heads' (B, 128) decoder logits outweigh h at this
                // width (F = 12), so they are not compared.
                if chunk < batch / 2 && !loss.isBackpropFree {
                    XCTAssertLessThan(measured.peak, whole.peak, "\(loss) chunk \(chunk) against the whole batch")
                }
                XCTAssertEqual(measured.left, measured.input + batch * outFeatures * 4, "\(loss): only input and hand-off are left")
            }
            // Linear in the chunk: one more example costs two rows (x-hat and h) of F floats.
            XCTAssertEqual(activationPeak(loss, chunk: 4).peak - activationPeak(loss, chunk: 3).peak, 2 * outFeatures * 4, "\(loss)")
        }
    }
}
