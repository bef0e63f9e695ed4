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
        // Against the rounding model of the forward (`BlockForwardModel`): z within the bound of
        // its sum of In + 1 terms, then BatchNorm operation by operation.
        let zMagnitudes = Reference.linear(xValues.map(abs), batch: batch, weight: w.map(abs), outFeatures: outFeatures, bias: b.map(abs))
        let model = BlockForwardModel(z: Rounded.ofSums(terms: inFeatures + 1, exact: z, absoluteSums: zMagnitudes),
                                      batch: batch, channels: outFeatures, spatial: 1, gamma: gamma, beta: beta,
                                      slope: Double(Nonlinearity.leakyRelu.negativeSlope),
                                      runningMean0: Array(repeating: 0, count: outFeatures), runningVar0: Array(repeating: 1, count: outFeatures))
        assertWithinBound(block.runningMean.doubles, model.runningMean, "running mean")
        assertWithinBound(block.runningVar.doubles, model.runningVar, "running var")
        // Broken variant: the running variance updated with the biased (1/N) variance.
        assertBoundCatches(bn.biasedVariance.map { 0.9 + 0.1 * $0 }, model.runningVar, "running var with 1/N")

        // The hand-off is dropout(h) with the step's seed, h from the weights before the update.
        let expected = makeTensor([batch, outFeatures], referenceH(xValues, w: w, b: b, gamma: gamma, beta: beta))
        Dropout.apply(expected, p: 0.3, seed: 4242)
        let mask = zeros([batch, outFeatures])
        mask.fill(1)
        Dropout.apply(mask, p: 0.3, seed: 4242)
        let handOffModel = model.droppedOut(mask: mask.doubles)
        assertWithinBound(handOff.doubles, handOffModel, "hand-off")
        // Broken variant: h without dropout.
        assertBoundCatches(referenceH(xValues, w: w, b: b, gamma: gamma, beta: beta), handOffModel, "hand-off without dropout")
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
        // Bounds (`BlockStepBound`): the longest sums are the similarity's B^2 = 36 mean (the
        // BatchNorm sums and weight gradients have B = 6 terms). The reported losses within the
        // forward's sums of the exact loss; the step within the whole step's sums of minus the
        // gradient, relative to the largest entry, plus the finite-difference metric.
        let longestSum = batch * batch
        let forwardBound = BlockStepBound.relative(longestSum: longestSum, sums: BlockStepBound.forwardSums,
                                                   elementwise: BlockStepBound.forwardSums)
        let stepBound = BlockStepBound.relative(longestSum: longestSum)
        let fd = BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: longestSum)
        let exactSim = 0.7 * HeadReference.simLoss(h: h, weight: before[6], batch: batch, target: target)
        XCTAssertEqual(Double(stats.loss), localLoss(before), accuracy: forwardBound * max(1, abs(localLoss(before))), "reported local loss")
        XCTAssertEqual(Double(stats.simLoss), exactSim, accuracy: forwardBound * max(1, exactSim))
        // Broken variant: the sim loss with beta 0.69 in place of 0.7.
        XCTAssertGreaterThan(abs(Double(stats.simLoss) - exactSim * 0.69 / 0.7), forwardBound * max(1, exactSim), "a sim loss weighted 0.69 passes")
        var scale = 0.0  // the largest gradient entry so far (the linear weight's, which comes first)
        for (i, p) in params.enumerated() {
            let step = subtract(before[i], p.value.doubles)  // = lr * grad, lr = 1
            let numeric = numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return localLoss(all)
            }
            scale = max(scale, maxAbs(numeric))
            if i == 1 {
                // A bias before BatchNorm is cancelled by the mean: its gradient is zero. Its step
                // sums the B values dz whose products with the O(1) inputs make the weight
                // gradient: rounding of the step's size relative to the block's scale.
                XCTAssertLessThan(maxAbs(step), stepBound * scale, "linear bias (zero gradient)")
                XCTAssertLessThan(maxAbs(numeric), fd)
            } else {
                assertGradientsMatch(step, numeric, "\(p.name)", relativeTolerance: stepBound, absoluteTolerance: fd)
            }
            // Broken variant: a gradient moved by 10 bounds, or negated.
            if i == 0 {
                assertMutationDetected(step, numeric, p.name, fraction: 10 * stepBound, relativeTolerance: stepBound, absoluteTolerance: fd)
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
        // Against the rounding model of the evaluation forward: z within the bound of its sum of
        // In + 1 terms, then out = z s + (beta - rm s), s = gamma / sqrt(rv + eps), as
        // BatchNormKernel.forwardEval computes it, then the 1-Lipschitz nonlinearity.
        let w = block.weight.value.doubles, b = block.bias.value.doubles, gamma = block.bnWeight.value.doubles
        let zModel = Rounded.ofSums(terms: inFeatures + 1, exact: z, absoluteSums: Reference.linear(
            xValues.map(abs), batch: batch, weight: w.map(abs), outFeatures: outFeatures, bias: b.map(abs)))
        let slope = Double(Nonlinearity.leakyRelu.negativeSlope)
        let expected = zModel.indices.map { i -> Rounded in
            let c = i % outFeatures
            let s = Rounded(exact: gamma[c]) / (Rounded(exact: rv[c]) + BlockForwardModel.epsilon).squareRoot()
            let y = zModel[i] * s + (Rounded(exact: block.bnBias.value.doubles[c]) - Rounded(exact: rm[c]) * s)
            let value = y.exact > 0 ? y.exact : slope * y.exact
            return Rounded(exact: value, error: y.error + (Rounded.constant(slope) * y).error + Rounded.u * abs(value))
        }
        XCTAssertNil(RoundingBound.violation(Reference.leakyRelu(bn, slope: 0.01), expected.map { Rounded(exact: $0.exact, error: 1e-9) }),
                     "model vs Reference (slope 0.01 against Float's 0.0099999998)")
        assertWithinBound(out.doubles, expected, "eval output")
        // Broken variant: BatchNorm with the batch's statistics instead of the running ones.
        let batchStatistics = Reference.batchNormTraining(z, batch: batch, channels: outFeatures, spatial: 1, gamma: gamma,
                                                          beta: block.bnBias.value.doubles)
        assertBoundCatches(Reference.leakyRelu(batchStatistics.out, slope: 0.01), expected, "eval with the batch's statistics")
        XCTAssertEqual(block.localParameters.map { $0.value.array }, before, "evaluation must not train")
        XCTAssertEqual(block.runningMean.doubles, rm, "evaluation must not update running statistics")
    }
}
