import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// Network.trainStep: in local mode no gradient crosses a block boundary; in backprop mode the
/// output loss reaches every block, with the gradient of the whole network's loss.
final class NetworkTests: XCTestCase {
    let batch = 6, inputs = 4, hidden = 5, classes = 3
    let labels: [Int32] = [0, 1, 0, 2, 1, 2]

    private func spec(_ loss: LossKind, layers: Int, dropout: Float, nonlinearity: Nonlinearity) -> ModelSpec {
        var s = ModelSpec()
        s.inputShape = [inputs, 1, 1]
        s.classes = classes
        s.numLayers = layers
        s.numHidden = hidden
        s.loss = loss
        s.beta = 0.9
        s.dropout = dropout
        s.nonlinearity = nonlinearity
        return s
    }

    private func images(seed: UInt64) -> Tensor {
        var random = TestRandom(seed: seed)
        return makeTensor([batch, inputs, 1, 1], random.uniform(batch * inputs, -1, 1))
    }

    @discardableResult
    private func step(_ net: Network, _ x: Tensor, labels: [Int32], lr: Float) -> StepStats {
        labels.withUnsafeBufferPointer { net.trainStep(images: x, labels: $0.baseAddress!, lr: lr, step: 0) }
    }

    /// Everything a block holds that training can change.
    private func state(_ block: HiddenBlock<LinearMap>) -> [[Float]] {
        block.localParameters.map { $0.value.array } + [block.runningMean.array, block.runningVar.array]
    }

    /// Two identical networks, one step on the same batch; only block 2's beta differs. Blocks 0
    /// and 1 must come out bit-identical, block 2 must not. The output layer is identical too:
    /// it trains on block 2's hand-off, which is computed before block 2's update.
    func testLocalModeNoGradientCrossesABlockBoundary() {
        let s = spec(.predsim, layers: 3, dropout: 0.1, nonlinearity: .leakyRelu)
        let a = Network(spec: s, seed: 77), b = Network(spec: s, seed: 77)
        b.blocks[2].beta = 0.3
        let initial = a.blocks.map(state)
        XCTAssertEqual(initial, b.blocks.map(state), "same seed, same initial networks")
        let x = images(seed: 1)
        step(a, x, labels: labels, lr: 0.01)
        step(b, x, labels: labels, lr: 0.01)
        for i in 0..<2 {
            XCTAssertNotEqual(state(a.blocks[i]), initial[i], "block \(i) did not train")
            XCTAssertEqual(state(a.blocks[i]), state(b.blocks[i]), "block \(i) saw something from block 2's loss")
        }
        XCTAssertNotEqual(a.blocks[2].weight.value.array, b.blocks[2].weight.value.array, "block 2's beta made no difference")
        XCTAssertEqual(a.output.weight.value.array, b.output.weight.value.array)
        XCTAssertEqual(a.output.bias.value.array, b.output.bias.value.array)
        XCTAssertTrue(a.allParameters.allSatisfy { $0.grad == nil }, "gradients must be dropped after the step")

        // Block 0 trains the same whether or not two more blocks follow it (the blocks are built
        // from one seeded generator in order, so block 0 starts the same in both).
        let single = Network(spec: spec(.predsim, layers: 1, dropout: 0.1, nonlinearity: .leakyRelu), seed: 77)
        XCTAssertEqual(state(single.blocks[0]), initial[0])
        step(single, x, labels: labels, lr: 0.01)
        XCTAssertEqual(state(single.blocks[0]), state(a.blocks[0]))
    }

    /// In backprop mode the output loss reaches block 0: other labels, another update.
    func testBackpropModeOutputLossReachesTheFirstBlock() {
        let s = spec(.backprop, layers: 3, dropout: 0.1, nonlinearity: .relu)
        let a = Network(spec: s, seed: 78), b = Network(spec: s, seed: 78)
        XCTAssertNil(a.blocks[0].heads)
        let x = images(seed: 2)
        var otherLabels = labels
        otherLabels[0] = 2
        step(a, x, labels: labels, lr: 0.01)
        step(b, x, labels: otherLabels, lr: 0.01)
        XCTAssertNotEqual(a.blocks[0].weight.value.array, b.blocks[0].weight.value.array)
        XCTAssertTrue(a.allParameters.allSatisfy { $0.grad == nil }, "gradients must be dropped after the step")
    }

    // MARK: backprop gradient check

    /// The whole network's training-mode loss in Float64: blocks Linear -> BN (batch statistics)
    /// -> ReLU, no dropout, then the output Linear and mean cross-entropy.
    /// `v` lists every parameter of network.globalOptimizer in its order: per block linear
    /// weight, bias, bn weight, bn bias; then output weight, bias.
    /// `masks[l]`, if given, multiplies block l's hand-off (dropout's mask times 1/(1-p)).
    private func networkLoss(_ x: [Double], _ v: [[Double]], layers: Int, masks: [[Double]]? = nil) -> Double {
        var h = x
        for l in 0..<layers {
            let p = Array(v[(4 * l)..<(4 * l + 4)])
            let z = Reference.linear(h, batch: batch, weight: p[0], outFeatures: hidden, bias: p[1])
            let bn = Reference.batchNormTraining(z, batch: batch, channels: hidden, spatial: 1, gamma: p[2], beta: p[3])
            h = Reference.leakyRelu(bn.out, slope: 0)
            if let masks { h = zip(h, masks[l]).map { $0 * $1 } }
        }
        let logits = Reference.linear(h, batch: batch, weight: v[4 * layers], outFeatures: classes, bias: v[4 * layers + 1])
        return Reference.crossEntropy(logits, labels: labels)
    }

    /// Tiny net (input 4, 2 blocks of 5, 3 classes, ReLU, no dropout), SGD lr 1 without momentum:
    /// the update of each parameter is minus its gradient. Compare with finite differences of
    /// the Float64 network loss. (BN running statistics change on every forward but do not enter
    /// a training-mode output, and the reference does not use them.)
    func testBackpropGradientMatchesFiniteDifferencesOfTheNetworkLoss() {
        checkBackpropGradient(dropout: 0)
    }

    /// The same with dropout 0.2: the backward must regenerate each block's forward mask.
    func testBackpropGradientWithDropoutMatchesFiniteDifferences() {
        checkBackpropGradient(dropout: 0.2)
    }

    private func checkBackpropGradient(dropout: Float, file: StaticString = #filePath, line: UInt = #line) {
        let layers = 2
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        let net = Network(spec: spec(.backprop, layers: layers, dropout: dropout, nonlinearity: .relu), seed: 79, optimizer: settings)
        // Step 0's masks, drawn the way the network draws them: dropout of a tensor of ones.
        let masks: [[Double]] = (0..<layers).map { l in
            let ones = zeros([batch, hidden])
            ones.fill(1)
            Dropout.apply(ones, p: dropout, seed: net.dropoutSeed(step: 0, layer: l))
            return ones.doubles
        }
        if dropout > 0 { XCTAssertTrue(masks.allSatisfy { $0.contains(0) }, "every block's mask should drop something", file: file, line: line) }
        // Non-trivial BN affine parameters so their gradients are checked away from (1, 0).
        var random = TestRandom(seed: 80)
        for block in net.blocks {
            block.bnWeight.value.copy(from: random.uniform(hidden, 0.5, 1.5).map { Float($0) })
            block.bnBias.value.copy(from: random.uniform(hidden, -0.3, 0.3).map { Float($0) })
        }
        let params = net.globalOptimizer!.parameters
        XCTAssertEqual(params.map(\.name), net.blocks.flatMap(\.parameters).map(\.name) + ["output.weight", "output.bias"])
        let x = images(seed: 3)
        let xValues = x.doubles
        let before = params.map { $0.value.doubles }

        let stats = step(net, x, labels: labels, lr: 1)
        // Bounds (`BlockStepBound`): every sum has at most B = 6 terms (BatchNorm, the weight
        // gradients, the Linear layers' In + 1 <= 6). The forward crosses the blocks and the
        // output layer, the backward crosses them again: the loss within the forward's bound,
        // each update within the whole step's bound relative to its largest entry, plus the
        // finite-difference metric of the Float64 network loss.
        let longestSum = batch, blocks = layers + 1
        let exactLoss = networkLoss(xValues, before, layers: layers, masks: masks)
        let lossBound = BlockStepBound.networkRelative(longestSum: longestSum, blocks: blocks) * max(1, abs(exactLoss))
        let stepBound = BlockStepBound.networkRelative(longestSum: longestSum, blocks: 2 * blocks)
        let fd = BlockStepBound.finiteDifference(sums: 3 * blocks + BlockStepBound.forwardSums, longestSum: longestSum)
        XCTAssertEqual(Double(stats.outputLoss), exactLoss, accuracy: lossBound, "output loss", file: file, line: line)
        // Broken variant: the loss with the output layer's weight negated.
        var negated = before
        negated[4 * layers] = negated[4 * layers].map { -$0 }
        XCTAssertGreaterThan(abs(Double(stats.outputLoss) - networkLoss(xValues, negated, layers: layers, masks: masks)), lossBound,
                             "the loss with the output weight negated passes the bound", file: file, line: line)
        var scale = 0.0  // the largest gradient entry so far (blocks.0.linear.weight comes first)

        for (i, p) in params.enumerated() {
            let grad = subtract(before[i], p.value.doubles)  // lr 1, no momentum: delta = -grad
            let numeric = numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return self.networkLoss(xValues, all, layers: layers, masks: masks)
            }
            scale = max(scale, maxAbs(numeric))
            if p.name.hasSuffix("linear.bias") {
                // Cancelled by the following BatchNorm's mean: zero gradient; its step is rounding
                // of the sums of dz the weight gradient makes with O(1) inputs.
                XCTAssertLessThan(maxAbs(numeric), fd, file: file, line: line)
                XCTAssertLessThan(maxAbs(grad), stepBound * scale, "\(p.name)", file: file, line: line)
            } else {
                assertGradientsMatch(grad, numeric, "\(p.name), dropout \(dropout)", relativeTolerance: stepBound, absoluteTolerance: fd,
                                     file: file, line: line)
            }
            // Broken variant: a gradient moved by 10 bounds, or negated.
            if p.name == "blocks.0.linear.weight" {
                assertMutationDetected(grad, numeric, p.name, fraction: 10 * stepBound, relativeTolerance: stepBound, absoluteTolerance: fd,
                                       file: file, line: line)
            }
        }
    }

    // MARK: output layer in local mode

    /// predsim, SGD lr 1 without momentum, no dropout: the output layer starts at zero weights
    /// and its update is minus the gradient of (1 - beta) CE(output(hand-off of the last block)),
    /// where each block's hand-off is computed with that block's weights before its update.
    func testLocalModeOutputLayerStartsAtZeroAndIsScaledByOneMinusBeta() {
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        let layers = 2
        let net = Network(spec: spec(.predsim, layers: layers, dropout: 0, nonlinearity: .leakyRelu), seed: 81, optimizer: settings)
        XCTAssertTrue(net.output.weight.value.array.allSatisfy { $0 == 0 }, "local mode: output weights start at zero")
        let x = images(seed: 4)
        var h = x.doubles
        for block in net.blocks {
            let z = Reference.linear(h, batch: batch, weight: block.weight.value.doubles, outFeatures: hidden, bias: block.bias.value.doubles)
            let bn = Reference.batchNormTraining(z, batch: batch, channels: hidden, spatial: 1,
                                                 gamma: block.bnWeight.value.doubles, beta: block.bnBias.value.doubles)
            h = Reference.leakyRelu(bn.out, slope: 0.01)
        }
        let handOff = h
        let w0 = net.output.weight.value.doubles, b0 = net.output.bias.value.doubles
        func outputLoss(_ w: [Double], _ b: [Double]) -> Double {
            Reference.crossEntropy(Reference.linear(handOff, batch: batch, weight: w, outFeatures: classes, bias: b), labels: labels)
        }
        let stats = step(net, x, labels: labels, lr: 1)
        // Bounds (`BlockStepBound`): the hand-off carries the blocks' forward errors; the output
        // layer's own sums (In + 1 = 6 logit terms, B = 6 for its gradient) are no longer.
        let lossBound = BlockStepBound.networkRelative(longestSum: batch, blocks: layers + 1) * max(1, abs(outputLoss(w0, b0)))
        let stepBound = BlockStepBound.networkRelative(longestSum: batch, blocks: layers + 1)
        let fd = BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: batch)
        XCTAssertEqual(Double(stats.outputLoss), outputLoss(w0, b0), accuracy: lossBound, "reported output loss (unscaled CE)")
        let scale = 1 - 0.9  // 1 - beta
        let numericW = numericalGradient(at: w0) { scale * outputLoss($0, b0) }
        let stepW = subtract(w0, net.output.weight.value.doubles)
        assertGradientsMatch(stepW, numericW, "output weight", relativeTolerance: stepBound, absoluteTolerance: fd, minimumNorm: 1e-4)
        assertGradientsMatch(subtract(b0, net.output.bias.value.doubles), numericalGradient(at: b0) { scale * outputLoss(w0, $0) },
                             "output bias", relativeTolerance: stepBound, absoluteTolerance: fd, minimumNorm: 1e-4)
        // Broken variant: the output layer's update not scaled by 1 - beta.
        XCTAssertNotNil(gradientMismatch(analytic: stepW.map { $0 / scale }, numeric: numericW, relativeTolerance: stepBound, absoluteTolerance: fd),
                        "an update without the 1 - beta scale passes the bound")
    }
}
