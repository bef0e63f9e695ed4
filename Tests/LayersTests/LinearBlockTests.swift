import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// HiddenBlock<LinearMap>.trainLocal: forward, local loss on h (before dropout), backward into the block
/// and its heads only, the block's own optimizer step, hand-off dropout(h).
final class LinearBlockTests: XCTestCase {
    let batch = 6, inFeatures = 4, outFeatures = 5, classes = 3
    let labels: [Int32] = [0, 1, 0, 2, 1, 2]

    private func makeBlock(_ loss: LossKind, beta: Float, dropout: Float, settings: OptimizerSettings = OptimizerSettings()) -> HiddenBlock<LinearMap> {
        var rng = Xoshiro256(seed: 3)
        let block = HiddenBlock<LinearMap>(index: 0, inFeatures: inFeatures, outFeatures: outFeatures, classes: classes, loss: loss, beta: beta,
                                nonlinearity: .leakyRelu, dropout: dropout, rng: &rng, ledger: .shared)
        block.optimizer = Optimizer(block.localParameters, settings: settings, ledger: .shared)
        return block
    }

    private func trainLocal(_ block: HiddenBlock<LinearMap>, _ x: Tensor, lr: Float, seed: UInt64) -> (handOff: Tensor, stats: BlockStepStats) {
        labels.withUnsafeBufferPointer { block.trainLocal(x, labels: $0.baseAddress!, lr: lr, dropoutSeed: seed) }
    }

    /// h = leakyrelu(BN_train(x W^T + b)) in Float64.
    private func referenceH(_ x: [Double], w: [Double], b: [Double], gamma: [Double], beta: [Double]) -> [Double] {
        let z = Reference.linear(x, batch: batch, weight: w, outFeatures: outFeatures, bias: b)
        let bn = Reference.batchNormTraining(z, batch: batch, channels: outFeatures, spatial: 1, gamma: gamma, beta: beta)
        return Reference.leakyRelu(bn.out, slope: 0.01)
    }

    func testLocalStepChangesOnlyItsParametersDropsGradientsAndHandsOnDropoutOfH() {
        let block = makeBlock(.predsim, beta: 0.99, dropout: 0.3)
        var random = TestRandom(seed: 31)
        let xValues = random.uniform(batch * inFeatures, -1, 1)
        let x = makeTensor([batch, inFeatures], xValues)
        let before = block.localParameters.map { $0.value.array }
        let (w, b) = (block.weight.value.doubles, block.bias.value.doubles)
        let (gamma, beta) = (block.bnWeight.value.doubles, block.bnBias.value.doubles)

        let (handOff, _) = trainLocal(block, x, lr: 0.01, seed: 4242)

        XCTAssertEqual(x.doubles, xValues, "the block must not modify its input")
        XCTAssertEqual(block.localParameters.count, 4 + 3, "linear weight, bias, bn weight, bias; pred weight, bias; sim weight")
        for (p, old) in zip(block.localParameters, before) {
            XCTAssertNotEqual(p.value.array, old, "\(p.name) was not updated")
            XCTAssertNil(p.grad, "\(p.name) still holds a gradient after the step")
        }
        // Running statistics: momentum 0.1 from (0, 1), unbiased variance.
        let z = Reference.linear(xValues, batch: batch, weight: w, outFeatures: outFeatures, bias: b)
        let bn = Reference.batchNormTraining(z, batch: batch, channels: outFeatures, spatial: 1, gamma: gamma, beta: beta)
        assertClose(block.runningMean.doubles, bn.mean.map { 0.1 * $0 }, tolerance: 1e-6, "running mean")
        assertClose(block.runningVar.doubles, bn.unbiasedVariance.map { 0.9 + 0.1 * $0 }, tolerance: 1e-6, "running var")

        // The hand-off is dropout(h) with the step's seed, h from the weights before the update.
        let expected = makeTensor([batch, outFeatures], referenceH(xValues, w: w, b: b, gamma: gamma, beta: beta))
        Dropout.apply(expected, p: 0.3, seed: 4242)
        assertClose(handOff.doubles, expected.doubles, tolerance: 1e-5, "hand-off")
        XCTAssertEqual(handOff.shape, [batch, outFeatures])
        XCTAssertTrue(expected.array.contains(0) && expected.array.contains { $0 != 0 }, "mask must drop some and keep some")
    }

    /// The -bpf heads' fixed projection and feedback matrices are never trained.
    func testLocalStepLeavesFixedBpfTensorsAlone() {
        let block = makeBlock(.predsimBpf, beta: 0.5, dropout: 0)
        let fixed = block.heads!.fixedTensors.map { $0.tensor.array }
        XCTAssertEqual(fixed.count, 2)
        let before = block.localParameters.map { $0.value.array }
        var random = TestRandom(seed: 32)
        _ = trainLocal(block, makeTensor([batch, inFeatures], random.uniform(batch * inFeatures)), lr: 0.01, seed: 1)
        XCTAssertEqual(block.heads!.fixedTensors.map { $0.tensor.array }, fixed)
        for (p, old) in zip(block.localParameters, before) { XCTAssertNotEqual(p.value.array, old, "\(p.name) was not updated") }
    }

    /// With SGD (lr 1, no momentum) the step is minus the gradient of the block's local loss
    /// (1 - beta) CE(pred(h)) + beta L_sim(sim(h)) with h before dropout: check every parameter
    /// against finite differences of that loss in Float64. Dropout is on, so a loss taken after
    /// dropout would not match.
    func testLocalStepIsMinusTheGradientOfTheLocalLoss() {
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        let block = makeBlock(.predsim, beta: 0.7, dropout: 0.3, settings: settings)
        let heads = block.heads!
        var random = TestRandom(seed: 33)
        heads.predWeight!.value.copy(from: random.uniform(classes * outFeatures).map { Float($0) })
        let xValues = random.uniform(batch * inFeatures, -1, 1)
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let params = block.localParameters
        let before = params.map { $0.value.doubles }
        // params: linear weight, bias, bn weight, bn bias, pred weight, pred bias, sim weight
        func localLoss(_ v: [[Double]]) -> Double {
            let h = referenceH(xValues, w: v[0], b: v[1], gamma: v[2], beta: v[3])
            return 0.3 * HeadReference.predLoss(h: h, weight: v[4], bias: v[5], labels: labels)
                + 0.7 * HeadReference.simLoss(h: h, weight: v[6], batch: batch, target: target)
        }
        let (_, stats) = trainLocal(block, makeTensor([batch, inFeatures], xValues), lr: 1, seed: 99)
        let h = referenceH(xValues, w: before[0], b: before[1], gamma: before[2], beta: before[3])
        XCTAssertEqual(Double(stats.loss), localLoss(before), accuracy: 1e-5, "reported local loss")
        XCTAssertEqual(Double(stats.simLoss), 0.7 * HeadReference.simLoss(h: h, weight: before[6], batch: batch, target: target), accuracy: 1e-5)
        for (i, p) in params.enumerated() {
            let step = subtract(before[i], p.value.doubles)  // = lr * grad, lr = 1
            let numeric = numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return localLoss(all)
            }
            if i == 1 {
                // A bias before BatchNorm is cancelled by the mean: its gradient is zero.
                assertClose(step, numeric, tolerance: 1e-5, "linear bias (zero gradient)")
                XCTAssertLessThan(maxAbs(numeric), 1e-6)
            } else {
                assertGradientsMatch(step, numeric, "\(p.name)", relativeTolerance: 1e-4, absoluteTolerance: 1e-6)
            }
        }
    }

    /// Inference: BatchNorm with the running statistics (not the batch's), no dropout, no heads.
    func testForwardEvalUsesRunningStatisticsAndNoDropout() {
        let block = makeBlock(.predsim, beta: 0.99, dropout: 0.5)
        var random = TestRandom(seed: 34)
        let rm = random.uniform(outFeatures), rv = random.uniform(outFeatures, 0.5, 2)
        block.runningMean.copy(from: rm.map { Float($0) })
        block.runningVar.copy(from: rv.map { Float($0) })
        block.bnWeight.value.copy(from: random.uniform(outFeatures, 0.5, 1.5).map { Float($0) })
        let xValues = random.uniform(batch * inFeatures, -1, 1)
        let before = block.localParameters.map { $0.value.array }
        let out = block.forwardEval(makeTensor([batch, inFeatures], xValues))
        let z = Reference.linear(xValues, batch: batch, weight: block.weight.value.doubles, outFeatures: outFeatures,
                                 bias: block.bias.value.doubles)
        let bn = Reference.batchNormEval(z, channels: outFeatures, spatial: 1, gamma: block.bnWeight.value.doubles,
                                         beta: block.bnBias.value.doubles, runningMean: rm, runningVar: rv)
        assertClose(out.doubles, Reference.leakyRelu(bn, slope: 0.01), tolerance: 1e-5, "eval output")
        XCTAssertEqual(block.localParameters.map { $0.value.array }, before, "evaluation must not train")
        XCTAssertEqual(block.runningMean.doubles, rm, "evaluation must not update running statistics")
    }
}
