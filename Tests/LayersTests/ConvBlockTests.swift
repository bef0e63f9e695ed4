import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// HiddenBlock<ConvMap> in local and backprop mode, alone and inside a network: conv 3x3 -> BatchNorm over
/// (B, H, W) -> nonlinearity -> h; local losses on h before dropout; hand-off
/// maxpool(channel-dropout(h)) or channel-dropout(h).
final class ConvBlockTests: XCTestCase {
    let classes = 3

    private func labels(_ batch: Int) -> [Int32] { (0..<batch).map { Int32($0 % 3) } }

    /// A vgg8b on a 16x16 single-channel input (four 2x2 max pools take it to 1x1), conv widths
    /// scaled by `featMult`: 1/128 gives 1 2 2 4 4 4 channels, 1/32 gives 4 8 8 16 16 16.
    private func tinyVGG(_ loss: LossKind, featMult: Float, dropout: Float, numHidden: Int = 5) -> ModelSpec {
        var s = ModelSpec()
        s.kind = .vgg8b
        s.inputShape = [1, 16, 16]
        s.classes = classes
        s.numHidden = numHidden
        s.featMult = featMult
        s.dimInDecoder = 32
        s.loss = loss
        s.beta = 0.9
        s.dropout = dropout
        s.nonlinearity = loss == .backprop ? .relu : .leakyRelu
        return s
    }

    private func images(_ shape: [Int], seed: UInt64) -> Tensor {
        var random = TestRandom(seed: seed)
        return makeTensor(shape, random.uniform(shape.reduce(1, *), -1, 1))
    }

    /// Everything a block holds that training can change.
    private func state(_ b: HiddenBlock<ConvMap>) -> [[Float]] {
        b.localParameters.map { $0.value.array } + [b.runningMean.array, b.runningVar.array]
    }

    private func state(_ b: HiddenBlock<LinearMap>) -> [[Float]] {
        b.localParameters.map { $0.value.array } + [b.runningMean.array, b.runningVar.array]
    }

    private func state(_ net: Network) -> [[[Float]]] {
        net.convBlocks.map(state) + net.blocks.map(state) + [net.output.parameters.map { $0.value.array }]
    }

    /// dropout(ones) with the block's seed: the mask times 1 / (1 - p), (B, C, H, W).
    private func dropoutMask(_ shape: [Int], p: Float, seed: UInt64) -> [Double] {
        let ones = zeros(shape)
        ones.fill(1)
        Dropout.apply(ones, p: p, seed: seed, channelSize: shape[2] * shape[3])
        return ones.doubles
    }

    // MARK: local step inside a network

    /// trainLocal of one conv block of a local network: that block's parameters and heads (and
    /// running statistics) change, every other block and the output layer stay bit-identical,
    /// no gradient is left, and the hand-off is maxpool(channel-dropout(h)) with h from the
    /// weights before the update (or channel-dropout(h) for a block without a pool after it).
    func testLocalStepChangesOnlyItsBlockAndHandsOnPooledChannelDropoutOfH() {
        checkLocalStep(blockIndex: 1)  // 4 -> 8 channels at 16x16, max pool after
    }

    func testLocalStepWithoutPoolHandsOnChannelDropoutOfH() {
        checkLocalStep(blockIndex: 2)  // 8 -> 8 channels at 8x8, no pool after
    }

    private func checkLocalStep(blockIndex k: Int, file: StaticString = #filePath, line: UInt = #line) {
        let p: Float = 0.3, batch = 6
        let net = Network(spec: tinyVGG(.predsim, featMult: 1 / 32, dropout: p, numHidden: 8), seed: 11)
        let block = net.convBlocks[k]
        XCTAssertEqual(block.poolAfter, k == 1, file: file, line: line)
        let g = block.geometry
        let inShape = [batch, g.inChannels, g.height, g.width]
        let x = images(inShape, seed: 12)
        let xValues = x.doubles
        let before = state(net)
        let (w, b) = (block.weight.value.doubles, block.bias.value.doubles)
        let (gamma, beta) = (block.bnWeight.value.doubles, block.bnBias.value.doubles)
        let seed: UInt64 = 4242
        let labels = labels(batch)

        let (handOff, stats) = labels.withUnsafeBufferPointer {
            block.trainLocal(x, labels: $0.baseAddress!, lr: 0.01, dropoutSeed: seed)
        }

        XCTAssertEqual(x.doubles, xValues, "the block must not modify its input", file: file, line: line)
        XCTAssertGreaterThan(stats.simLoss, 0, file: file, line: line)
        XCTAssertNotNil(stats.wrong, "predsim has a classifying head", file: file, line: line)
        let after = state(net)
        for i in before.indices where i != k {
            XCTAssertEqual(after[i], before[i], "layer \(i) changed during block \(k)'s local step", file: file, line: line)
        }
        XCTAssertEqual(block.localParameters.count, 4 + 3, "conv weight, bias, bn weight, bias; pred weight, bias; sim weight",
                       file: file, line: line)
        for (param, old) in zip(block.localParameters, before[k]) {
            XCTAssertNotEqual(param.value.array, old, "\(param.name) was not updated", file: file, line: line)
        }
        XCTAssertTrue(net.allParameters.allSatisfy { $0.grad == nil }, "gradients must be dropped after the step", file: file, line: line)

        // Running statistics: momentum 0.1 from (0, 1), unbiased variance over B H W.
        let z = ConvReference.conv3x3(xValues, batch: batch, channels: g.inChannels, height: g.height, width: g.width,
                                      weight: w, outChannels: g.outChannels, bias: b)
        let bn = Reference.batchNormTraining(z, batch: batch, channels: g.outChannels, spatial: g.outSpatial, gamma: gamma, beta: beta)
        // Against the rounding model of the forward (`BlockForwardModel`): z within the bound of
        // its sum of 9 C + 1 terms, then BatchNorm operation by operation.
        let zMagnitudes = ConvReference.conv3x3(xValues.map(abs), batch: batch, channels: g.inChannels, height: g.height, width: g.width,
                                                weight: w.map(abs), outChannels: g.outChannels, bias: b.map(abs))
        let model = BlockForwardModel(z: Rounded.ofSums(terms: 9 * g.inChannels + 1, exact: z, absoluteSums: zMagnitudes),
                                      batch: batch, channels: g.outChannels, spatial: g.outSpatial, gamma: gamma, beta: beta,
                                      slope: Double(Nonlinearity.leakyRelu.negativeSlope),
                                      runningMean0: Array(repeating: 0, count: g.outChannels), runningVar0: Array(repeating: 1, count: g.outChannels))
        XCTAssertNil(RoundingBound.violation(bn.mean.map { 0.1 * $0 }, model.runningMean.map { Rounded(exact: $0.exact, error: 1e-12) }),
                     "model vs Reference", file: file, line: line)
        assertWithinBound(block.runningMean.doubles, model.runningMean, "running mean", file: file, line: line)
        assertWithinBound(block.runningVar.doubles, model.runningVar, "running var", file: file, line: line)
        // Broken variant: the running variance updated with the biased (1/N) variance.
        assertBoundCatches(bn.biasedVariance.map { 0.9 + 0.1 * $0 }, model.runningVar, "running var with 1/N", file: file, line: line)

        // The hand-off, from h computed here in Float64 with the weights before the update.
        let h = Reference.leakyRelu(bn.out, slope: 0.01)
        let hShape = [batch, g.outChannels, g.outHeight, g.outWidth]
        let mask = dropoutMask(hShape, p: p, seed: seed)
        let planes = batch * g.outChannels, spatial = g.outSpatial
        for plane in 0..<planes {
            let m = mask[(plane * spatial)..<((plane + 1) * spatial)]
            XCTAssertTrue(m.allSatisfy { $0 == m.first! }, "dropout must drop whole channels", file: file, line: line)
        }
        XCTAssertTrue(mask.contains(0) && mask.contains { $0 != 0 }, "the mask must drop some channels and keep some", file: file, line: line)
        let dropped = zip(h, mask).map { $0 * $1 }
        if block.poolAfter {
            XCTAssertEqual(handOff.shape, [batch, g.outChannels, g.outHeight / 2, g.outWidth / 2], file: file, line: line)
            let expected = BlockForwardModel.maxPool2x2(model.droppedOut(mask: mask), planes: planes, height: g.outHeight, width: g.outWidth)
            XCTAssertNil(RoundingBound.violation(ConvReference.maxPool2x2(dropped, planes: planes, height: g.outHeight, width: g.outWidth),
                                                 expected.map { Rounded(exact: $0.exact, error: 1e-9) }),
                         "model vs Reference (slope 0.01 against Float's 0.0099999998)", file: file, line: line)
            assertWithinBound(handOff.doubles, expected, "hand-off = maxpool(dropout(h))", file: file, line: line)
            // Broken variant: the pool taken before dropout.
            assertBoundCatches(ConvReference.maxPool2x2(h, planes: planes, height: g.outHeight, width: g.outWidth), expected,
                               "hand-off without dropout", file: file, line: line)
        } else {
            XCTAssertEqual(handOff.shape, hShape, file: file, line: line)
            let expected = model.droppedOut(mask: mask)
            assertWithinBound(handOff.doubles, expected, "hand-off = dropout(h)", file: file, line: line)
            assertBoundCatches(h, expected, "hand-off without dropout", file: file, line: line)
        }
        XCTAssertEqual(Array(handOff.shape.dropFirst()), block.outputShape, file: file, line: line)
    }

    // MARK: local step gradient of a block alone

    /// With SGD (lr 1, no momentum) the local step is minus the gradient of the block's local
    /// loss 0.3 CE(pred(avgpool(h))) + 0.7 L_sim(std(conv3x3_sim(h))), h before dropout: every
    /// block and head parameter against finite differences in Float64. Dropout and the pool
    /// after are on, so a loss taken after either would not match.
    func testLocalStepIsMinusTheGradientOfTheLocalLoss() {
        let batch = 6, c = 2, oc = 4, side = 4
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        var rng = Xoshiro256(seed: 21)
        let block = HiddenBlock<ConvMap>(index: 0, geometry: ConvGeometry(inChannels: c, outChannels: oc, height: side, width: side), poolAfter: true,
                              classes: classes, dimInDecoder: 16, loss: .predsim, beta: 0.7, nonlinearity: .leakyRelu, dropout: 0.3,
                              rng: &rng, ledger: .shared)
        block.optimizer = Optimizer(block.localParameters, settings: settings, ledger: .shared)
        let heads = block.heads!
        // 4 channels at 4x4, dim 16: kh 2 (4*2*4 = 32), kw 2 (16): kernel 2x2, no padding, 2x2.
        XCTAssertEqual([heads.pooling.kernelHeight, heads.pooling.kernelWidth, heads.pooling.outHeight, heads.pooling.outWidth], [2, 2, 2, 2])
        var random = TestRandom(seed: 22)
        heads.predWeight!.value.copy(from: random.uniform(heads.predWeight!.count).map { Float($0) })
        let xValues = random.uniform(batch * c * side * side, -1, 1)
        let labels = labels(batch)
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let params = block.localParameters
        XCTAssertEqual(params.map(\.name), ["blocks.0.conv.weight", "blocks.0.conv.bias", "blocks.0.bn.weight", "blocks.0.bn.bias",
                                            "blocks.0.pred.weight", "blocks.0.pred.bias", "blocks.0.sim.weight"])
        let before = params.map { $0.value.doubles }
        func localLoss(_ v: [[Double]]) -> Double {
            let h = ConvReference.convBlockH(xValues, batch: batch, inChannels: c, height: side, width: side,
                                             weight: v[0], bias: v[1], gamma: v[2], beta: v[3], slope: 0.01)
            let pooled = ConvReference.avgPool(h, planes: batch * oc, height: side, width: side, kernel: (2, 2), padding: (0, 0)).out
            let logits = Reference.linear(pooled, batch: batch, weight: v[4], outFeatures: classes, bias: v[5])
            let s = ConvReference.conv3x3(h, batch: batch, channels: oc, height: side, width: side, weight: v[6], outChannels: oc, bias: nil)
            let std = ConvReference.spatialStd(s, planes: batch * oc, positions: side * side)
            return 0.3 * Reference.crossEntropy(logits, labels: labels) + 0.7 * Reference.similarityLoss(std, rows: batch, target: target)
        }
        let (_, stats) = labels.withUnsafeBufferPointer {
            block.trainLocal(makeTensor([batch, c, side, side], xValues), labels: $0.baseAddress!, lr: 1, dropoutSeed: 99)
        }
        // Bounds (`BlockStepBound`): the longest sums are BatchNorm's and the weight gradient's
        // over B H W = 96. The reported loss is within the forward's sums of the exact loss; the
        // step within the whole step's sums of minus the gradient, relative to the largest entry,
        // plus the finite-difference metric of the Float64 gradient.
        let longestSum = batch * side * side
        let lossBound = BlockStepBound.relative(longestSum: longestSum, sums: BlockStepBound.forwardSums,
                                                elementwise: BlockStepBound.forwardSums) * max(1, abs(localLoss(before)))
        let stepBound = BlockStepBound.relative(longestSum: longestSum)
        let fd = BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: longestSum)
        XCTAssertEqual(Double(stats.loss), localLoss(before), accuracy: lossBound, "reported local loss")
        // Broken variant: the loss with the sim head's weight read as zero.
        var noSim = before
        noSim[6] = noSim[6].map { _ in 0 }
        XCTAssertGreaterThan(abs(Double(stats.loss) - localLoss(noSim)), lossBound, "the loss without the sim head passes the bound")
        var scale = 0.0  // the largest gradient entry so far (the conv weight's, which comes first)
        for (i, p) in params.enumerated() {
            let step = subtract(before[i], p.value.doubles)  // = lr * grad, lr = 1
            let numeric = numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return localLoss(all)
            }
            scale = max(scale, maxAbs(numeric))
            if i == 1 {
                // A conv bias before BatchNorm is cancelled by the channel mean: zero gradient.
                // Its step sums the N values dz whose products with the inputs (O(1)) make the
                // weight gradient: rounding of the step's size relative to the block's scale.
                XCTAssertLessThan(maxAbs(numeric), fd)
                XCTAssertLessThan(maxAbs(step), stepBound * scale, "conv bias (zero gradient)")
            } else {
                assertGradientsMatch(step, numeric, p.name, relativeTolerance: stepBound, absoluteTolerance: fd)
            }
            // Broken variant: a gradient moved by 10 bounds, or negated.
            if i == 0 {
                assertMutationDetected(step, numeric, p.name, fraction: 10 * stepBound, relativeTolerance: stepBound, absoluteTolerance: fd)
            }
        }
    }

    // MARK: no gradient crosses a block boundary

    /// Two local networks with conv blocks, same seed, one step on the same batch; only one
    /// block's beta differs. Every block before it must come out bit-identical, and so must
    /// everything after it: the next block trains on its hand-off, computed before its update.
    func testLocalModeNoGradientCrossesAConvBlockBoundary() {
        let s = tinyVGG(.predsim, featMult: 1 / 32, dropout: 0.1, numHidden: 8)
        let x = images([6, 1, 16, 16], seed: 31)
        let labels = labels(6)
        func step(_ net: Network) { _ = labels.withUnsafeBufferPointer { net.trainStep(images: x, labels: $0.baseAddress!, lr: 0.01, step: 0) } }

        // The last hidden block (the Linear classifier block).
        do {
            let a = Network(spec: s, seed: 77), b = Network(spec: s, seed: 77)
            b.blocks[0].beta = 0.3
            let initial = state(a)
            XCTAssertEqual(initial, state(b), "same seed, same initial networks")
            step(a)
            step(b)
            for i in a.convBlocks.indices {
                XCTAssertNotEqual(state(a.convBlocks[i]), initial[i], "conv block \(i) did not train")
                XCTAssertEqual(state(a.convBlocks[i]), state(b.convBlocks[i]), "conv block \(i) saw something from the last block's loss")
            }
            XCTAssertNotEqual(a.blocks[0].weight.value.array, b.blocks[0].weight.value.array, "the last block's beta made no difference")
            XCTAssertEqual(a.output.parameters.map { $0.value.array }, b.output.parameters.map { $0.value.array })
            XCTAssertTrue(a.allParameters.allSatisfy { $0.grad == nil }, "gradients must be dropped after the step")
        }
        // The last conv block: the conv blocks before it and the Linear block and output after it
        // are bit-identical.
        do {
            let a = Network(spec: s, seed: 78), b = Network(spec: s, seed: 78)
            let last = a.convBlocks.count - 1
            b.convBlocks[last].beta = 0.3
            step(a)
            step(b)
            let sa = state(a), sb = state(b)
            for i in sa.indices where i != last { XCTAssertEqual(sa[i], sb[i], "layer \(i) saw something from conv block \(last)'s loss") }
            XCTAssertNotEqual(sa[last], sb[last], "conv block \(last)'s beta made no difference")
        }
    }

    // MARK: backprop gradient of a network with conv blocks

    /// The training-mode loss of a vgg8b network in Float64: per conv block conv3x3 -> BN over
    /// (B, H, W) -> ReLU -> channel mask -> 2x2 max pool where the model has one; the Linear
    /// block Linear -> BN -> ReLU -> mask; the output Linear and mean cross-entropy. `v` lists
    /// the parameters of the network's global optimizer in its order.
    private func networkLoss(_ net: Network, _ x: [Double], batch: Int, _ v: [[Double]], masks: [[Double]], labels: [Int32]) -> Double {
        var h = x
        var n = 0
        for b in net.convBlocks {
            let g = b.geometry
            h = ConvReference.convBlockH(h, batch: batch, inChannels: g.inChannels, height: g.height, width: g.width,
                                         weight: v[n], bias: v[n + 1], gamma: v[n + 2], beta: v[n + 3], slope: 0)
            h = zip(h, masks[b.index]).map { $0 * $1 }
            if b.poolAfter { h = ConvReference.maxPool2x2(h, planes: batch * g.outChannels, height: g.outHeight, width: g.outWidth) }
            n += 4
        }
        for b in net.blocks {
            let z = Reference.linear(h, batch: batch, weight: v[n], outFeatures: b.outFeatures, bias: v[n + 1])
            let bn = Reference.batchNormTraining(z, batch: batch, channels: b.outFeatures, spatial: 1, gamma: v[n + 2], beta: v[n + 3])
            h = zip(Reference.leakyRelu(bn.out, slope: 0), masks[b.index]).map { $0 * $1 }
            n += 4
        }
        let logits = Reference.linear(h, batch: batch, weight: v[n], outFeatures: classes, bias: v[n + 1])
        return Reference.crossEntropy(logits, labels: labels)
    }

    /// vgg8b at featMult 1/128 (1 2 2 4 4 4 channels) on 16x16, a Linear block of 5, 3 classes,
    /// ReLU, SGD lr 1 without momentum: each parameter's update is minus its gradient; compare
    /// with finite differences of the Float64 network loss.
    func testBackpropGradientThroughConvBlocksMatchesFiniteDifferences() {
        checkBackpropGradient(dropout: 0, seed: 41)
    }

    /// The same with dropout 0.2: each conv block's backward must regenerate its channel mask
    /// and route through the max pool's argmax.
    func testBackpropGradientThroughConvBlocksWithDropoutMatchesFiniteDifferences() {
        checkBackpropGradient(dropout: 0.2, seed: 42)
    }

    private func checkBackpropGradient(dropout: Float, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let batch = 4
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        let spec = tinyVGG(.backprop, featMult: 1 / 128, dropout: dropout)
        XCTAssertEqual(spec.convBlocks.map(\.outChannels), [1, 2, 2, 4, 4, 4], file: file, line: line)
        let net = Network(spec: spec, seed: seed, optimizer: settings)
        XCTAssertTrue(net.convBlocks.allSatisfy { $0.heads == nil }, file: file, line: line)
        // Step 0's masks, drawn as the network draws them: dropout of a tensor of ones.
        var masks = net.convBlocks.map { b in
            dropoutMask([batch, b.geometry.outChannels, b.geometry.outHeight, b.geometry.outWidth], p: dropout,
                        seed: net.dropoutSeed(step: 0, layer: b.index))
        }
        for b in net.blocks {
            let ones = zeros([batch, b.outFeatures])
            ones.fill(1)
            Dropout.apply(ones, p: dropout, seed: net.dropoutSeed(step: 0, layer: b.index))
            masks.append(ones.doubles)
        }
        if dropout > 0 {
            XCTAssertTrue(masks.contains { $0.contains(0) }, "some mask should drop something", file: file, line: line)
            XCTAssertTrue(masks.allSatisfy { $0.contains { $0 != 0 } }, "no block may drop everything", file: file, line: line)
        }
        // Non-trivial BN affine parameters so their gradients are checked away from (1, 0).
        var random = TestRandom(seed: seed &+ 1)
        for b in net.convBlocks {
            b.bnWeight.value.copy(from: random.uniform(b.bnWeight.count, 0.5, 1.5).map { Float($0) })
            b.bnBias.value.copy(from: random.uniform(b.bnBias.count, -0.3, 0.3).map { Float($0) })
        }
        let params = net.globalOptimizer!.parameters
        XCTAssertEqual(params.map(\.name), net.convBlocks.flatMap(\.parameters).map(\.name) + net.blocks.flatMap(\.parameters).map(\.name)
                       + ["output.weight", "output.bias"], file: file, line: line)
        let x = images([batch, 1, 16, 16], seed: seed &+ 2)
        let xValues = x.doubles
        let labels = labels(batch)
        let before = params.map { $0.value.doubles }

        let stats = labels.withUnsafeBufferPointer { net.trainStep(images: x, labels: $0.baseAddress!, lr: 1, step: 0) }
        // Bounds (`BlockStepBound`): the longest sums are the first block's BatchNorm and weight
        // gradient over B H W = 1024; the forward crosses every block (conv, BN, Linear, output),
        // the backward crosses them again. The loss within the forward's bound, each update
        // within the whole step's bound relative to its largest entry, plus the finite-difference
        // metric of the Float64 network loss.
        let longestSum = batch * 16 * 16, blocks = net.convBlocks.count + net.blocks.count + 1
        let exactLoss = networkLoss(net, xValues, batch: batch, before, masks: masks, labels: labels)
        let lossBound = BlockStepBound.networkRelative(longestSum: longestSum, blocks: blocks) * max(1, abs(exactLoss))
        let stepBound = BlockStepBound.networkRelative(longestSum: longestSum, blocks: 2 * blocks)
        let fd = BlockStepBound.finiteDifference(sums: 3 * blocks, longestSum: longestSum)
        XCTAssertEqual(Double(stats.outputLoss), exactLoss, accuracy: lossBound, "output loss", file: file, line: line)
        // Broken variant: the loss against the labels of the next class.
        let wrongLabels = labels.map { ($0 + 1) % Int32(classes) }
        XCTAssertGreaterThan(abs(Double(stats.outputLoss) - networkLoss(net, xValues, batch: batch, before, masks: masks, labels: wrongLabels)),
                             lossBound, "the loss of the wrong labels passes the bound", file: file, line: line)
        var scale = 0.0  // the largest gradient entry so far (blocks.0.conv.weight comes first)
        XCTAssertTrue(net.allParameters.allSatisfy { $0.grad == nil }, "gradients must be dropped after the step", file: file, line: line)

        for (i, p) in params.enumerated() {
            let grad = subtract(before[i], p.value.doubles)  // lr 1, no momentum: delta = -grad
            let numeric = numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return self.networkLoss(net, xValues, batch: batch, all, masks: masks, labels: labels)
            }
            // Cancelled by the following BatchNorm's mean: zero gradient. So is the last conv
            // block's BN shift without dropout: its ReLUs are all active here, so the shift goes
            // through the max pool (1x1 output) and the Linear block unchanged for every example
            // and the Linear block's BatchNorm subtracts it again; a mask breaks that symmetry.
            let lastConvShift = p.name == "blocks.\(net.convBlocks.count - 1).bn.bias" && dropout == 0
            // Zero in exact arithmetic: rounding of the step's size relative to the network's
            // scale (the sums of dz are those the weight gradients make with O(1) inputs).
            scale = max(scale, maxAbs(numeric))
            if p.name.hasSuffix("conv.bias") || p.name.hasSuffix("linear.bias") || lastConvShift {
                XCTAssertLessThan(maxAbs(numeric), fd, "\(p.name)", file: file, line: line)
                XCTAssertLessThan(maxAbs(grad), stepBound * scale, "\(p.name)", file: file, line: line)
            } else {
                assertGradientsMatch(grad, numeric, "\(p.name), dropout \(dropout)", relativeTolerance: stepBound, absoluteTolerance: fd,
                                     minimumNorm: 1e-5, file: file, line: line)
            }
            // Broken variant: a gradient moved by 10 bounds, or negated.
            if p.name == "blocks.0.conv.weight" {
                assertMutationDetected(grad, numeric, p.name, fraction: 10 * stepBound, relativeTolerance: stepBound, absoluteTolerance: fd,
                                       file: file, line: line)
            }
        }
    }
}
