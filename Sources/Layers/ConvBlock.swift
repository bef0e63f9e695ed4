import MemoryLedger
import Randomness
import Tensors

/// A conv block: 3x3 convolution (stride 1, pad 1, bias) -> BatchNorm over (B, H, W) ->
/// nonlinearity -> h (B, C, H, W); the next block receives dropout(h) (whole channels),
/// max-pooled 2x2 when the model has an `M` after this block. Local mode trains the block from
/// its heads on h and keeps only the hand-off; backprop mode keeps what its backward needs.
public final class ConvBlock {
    public let index: Int
    public let geometry: ConvGeometry
    public let poolAfter: Bool
    public let nonlinearity: Nonlinearity
    public let dropout: Float
    public var loss: LossKind
    public var beta: Float
    public let weight: Parameter
    public let bias: Parameter
    public let bnWeight: Parameter
    public let bnBias: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let heads: ConvHeads?
    public var optimizer: Optimizer?
    /// The convolution's scratch, booked as `workspace`; its size does not depend on the batch
    /// (`ConvWorkspace.bytes`). Its own allocation, or a view of one the network shares between
    /// every conv (blocks and sim heads run one at a time in both modes).
    public let workspace: ConvWorkspace
    let ledger: Ledger

    private struct Saved {
        var input: Tensor
        var xhat: Tensor
        var h: Tensor
        var invStd: Tensor
        var argmax: TrackedBuffer<UInt8>?
        var dropoutSeed: UInt64
    }
    private var saved: Saved?

    public init(index: Int, geometry: ConvGeometry, poolAfter: Bool, classes: Int, dimInDecoder: Int,
                loss: LossKind, beta: Float, nonlinearity: Nonlinearity, dropout: Float,
                rng: inout Xoshiro256, ledger: Ledger, sharedWorkspace: ConvWorkspace? = nil) {
        self.index = index
        self.geometry = geometry
        self.poolAfter = poolAfter
        self.nonlinearity = nonlinearity
        self.dropout = dropout
        self.loss = loss
        self.beta = beta
        self.ledger = ledger
        let prefix = "blocks.\(index)"
        let oc = geometry.outChannels
        weight = Parameter(name: "\(prefix).conv.weight", shape: geometry.weightShape, category: .weights, layer: index, label: "conv.weight", ledger: ledger)
        bias = Parameter(name: "\(prefix).conv.bias", shape: [oc], category: .weights, layer: index, label: "conv.bias", ledger: ledger)
        let bound = 1 / Float(geometry.patchSize).squareRoot()
        weight.initUniform(bound: bound, rng: &rng)
        bias.initUniform(bound: bound, rng: &rng)
        (bnWeight, bnBias, runningMean, runningVar) = BatchNormParameters.make(layer: index, channels: oc, ledger: ledger)
        workspace = sharedWorkspace?.serving(geometry) ?? ConvWorkspace(geometry, layer: index, ledger: ledger)
        heads = loss.isLocal
            ? ConvHeads(loss: loss, channels: oc, height: geometry.outHeight, width: geometry.outWidth, classes: classes,
                        dimInDecoder: dimInDecoder, layer: index, rng: &rng, ledger: ledger, sharedWorkspace: sharedWorkspace)
            : nil
    }

    public var parameters: [Parameter] { [weight, bias, bnWeight, bnBias] }
    public var localParameters: [Parameter] { parameters + (heads?.parameters ?? []) }

    /// (C, H, W) of the hand-off.
    public var outputShape: [Int] {
        let h = geometry.outHeight, w = geometry.outWidth
        return [geometry.outChannels, poolAfter ? h / 2 : h, poolAfter ? w / 2 : w]
    }

    private var spatial: Int { geometry.outSpatial }

    private func convAndNorm(_ x: Tensor) -> (xhat: Tensor, h: Tensor, invStd: Tensor) {
        let batch = x.rowCount, oc = geometry.outChannels
        let shape = geometry.outputShape(batch: batch)
        let input = x.reshaped(geometry.inputShape(batch: batch))
        let z = Tensor(shape, .activations, layer: index, label: "z", ledger: ledger, zeroed: false)
        Conv2dKernel.forward(x: input, weight: weight.value, bias: bias.value, into: z, workspace: workspace)
        let h = Tensor(shape, .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        let mean = Tensor([oc], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
        let invStd = Tensor([oc], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
        BatchNormKernel.forwardTraining(z: z, channels: oc, gamma: bnWeight.value, beta: bnBias.value,
                                        runningMean: runningMean, runningVar: runningVar, mean: mean, invStd: invStd, out: h)
        return (z, h, invStd)
    }

    private func backwardThroughBlock(dh: Tensor, x: Tensor, xhat: Tensor, h: Tensor, invStd: Tensor, wantInputGrad: Bool) -> Tensor? {
        let oc = geometry.outChannels
        nonlinearity.backward(output: h, grad: dh)
        let scratch = Tensor([2 * oc], .workspace, layer: index, label: "bn.scratch", ledger: ledger, zeroed: false)
        BatchNormKernel.backward(grad: dh, xhat: xhat, channels: oc, gamma: bnWeight.value, invStd: invStd,
                                 gammaGrad: bnWeight.makeGrad(), betaGrad: bnBias.makeGrad(), scratch: scratch)
        let input = x.reshaped(geometry.inputShape(batch: x.rowCount))
        Conv2dKernel.backwardWeights(dy: dh, x: input, weightGrad: weight.makeGrad(), biasGrad: bias.makeGrad(), workspace: workspace)
        guard wantInputGrad else { return nil }
        let dx = Tensor(input.shape, .activationGrads, layer: index, label: "dx", ledger: ledger, zeroed: false)
        Conv2dKernel.backwardData(dy: dh, weight: weight.value, into: dx, workspace: workspace)
        return dx
    }

    /// dropout(h) in place, then max-pooled if the model pools after this block.
    private func handOff(from h: Tensor, dropoutSeed: UInt64, argmax: Bool) -> (Tensor, TrackedBuffer<UInt8>?) {
        Dropout.apply(h, p: dropout, seed: dropoutSeed, channelSize: spatial)
        guard poolAfter else { return (h, nil) }
        let pooled = Tensor(MaxPoolKernel.outputShape(h.shape), .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
        let indices = argmax ? MaxPoolKernel.makeArgmax(for: pooled, layer: index, ledger: ledger) : nil
        MaxPoolKernel.forward(x: h, into: pooled, argmax: indices)
        return (pooled, indices)
    }

    /// One local step: forward, local loss, local backward, own update; returns the hand-off.
    /// `chunk` smaller than the batch computes the same step in micro-batches of that many
    /// examples with recomputation (`trainLocalChunked`); nil (or the batch or more) is this path.
    public func trainLocal(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                           chunk: Int? = nil) -> (handOff: Tensor, stats: BlockStepStats) {
        if let chunk, chunk < x.rowCount {
            return trainLocalChunked(x, labels: labels, lr: lr, dropoutSeed: dropoutSeed, chunk: chunk)
        }
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        ledger.enter(.forward, layer: index, label: "forward")
        // Explicit lifetimes: x-hat, invStd and dh go as soon as the backward is done, before the
        // update; only h (becoming the hand-off) outlives it.
        let h: Tensor
        var normalized: (xhat: Tensor, invStd: Tensor)?
        do {
            let f = convAndNorm(x)
            h = f.h
            normalized = (f.xhat, f.invStd)
        }
        nonlinearity.forward(h)
        ledger.enter(.localLoss, layer: index, label: "localLoss")
        var dh: Tensor? = Tensor(h.shape, .activationGrads, layer: index, label: "dh", ledger: ledger)
        let (pred, sim) = heads.apply(h: h, labels: labels, dh: dh!, beta: beta)
        var stats = BlockStepStats(predLoss: pred.loss, simLoss: sim.loss)
        if let correct = pred.correct { stats.wrong = x.rowCount - correct }
        ledger.enter(.backward, layer: index, label: "backward")
        _ = backwardThroughBlock(dh: dh!, x: x, xhat: normalized!.xhat, h: h, invStd: normalized!.invStd, wantInputGrad: false)
        normalized = nil
        dh = nil
        ledger.enter(.update, layer: index, label: "update")
        optimizer.step(lr: lr)
        for p in localParameters { p.dropGrad() }
        let (out, _) = handOff(from: h, dropoutSeed: dropoutSeed, argmax: false)
        return (out, stats)
    }

    public func forwardBackprop(_ x: Tensor, dropoutSeed: UInt64) -> Tensor {
        ledger.enter(.forward, layer: index, label: "forward")
        let (xhat, h, invStd) = convAndNorm(x)
        nonlinearity.forward(h)
        let dropped = Tensor(h.shape, .activations, layer: index, label: "dropped", ledger: ledger, zeroed: false)
        dropped.copy(from: h)
        let (out, argmax) = handOff(from: dropped, dropoutSeed: dropoutSeed, argmax: true)
        saved = Saved(input: x, xhat: xhat, h: h, invStd: invStd, argmax: argmax, dropoutSeed: dropoutSeed)
        return out
    }

    public func backwardBackprop(_ dHandOff: Tensor, wantInputGrad: Bool) -> Tensor? {
        guard let s = saved else { preconditionFailure("block \(index): backward without forward") }
        ledger.enter(.backward, layer: index, label: "backward")
        // The next block may hand back a flat (B, C h' w') gradient (the classifier's Linear
        // block): view it in the hand-off's (B, C, h', w') shape. A view, no bytes booked.
        let dy = dHandOff.reshaped([dHandOff.rowCount] + outputShape)
        var dh = dy
        if poolAfter, let argmax = s.argmax {
            dh = Tensor(s.h.shape, .activationGrads, layer: index, label: "dh", ledger: ledger, zeroed: false)
            MaxPoolKernel.backward(dy: dy, argmax: argmax, into: dh)
        }
        Dropout.apply(dh, p: dropout, seed: s.dropoutSeed, channelSize: spatial)
        let dx = backwardThroughBlock(dh: dh, x: s.input, xhat: s.xhat, h: s.h, invStd: s.invStd, wantInputGrad: wantInputGrad)
        saved = nil
        return dx
    }

    public func forwardEval(_ x: Tensor) -> Tensor {
        ledger.enter(.evaluate, layer: index, label: "evaluate")
        let batch = x.rowCount
        let h = Tensor(geometry.outputShape(batch: batch), .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        Conv2dKernel.forward(x: x.reshaped(geometry.inputShape(batch: batch)), weight: weight.value, bias: bias.value, into: h, workspace: workspace)
        BatchNormKernel.forwardEval(z: h, channels: geometry.outChannels, gamma: bnWeight.value, beta: bnBias.value,
                                    runningMean: runningMean, runningVar: runningVar, out: h)
        nonlinearity.forward(h)
        guard poolAfter else { return h }
        let pooled = Tensor(MaxPoolKernel.outputShape(h.shape), .activations, layer: index, label: "pooled", ledger: ledger, zeroed: false)
        MaxPoolKernel.forward(x: h, into: pooled)
        return pooled
    }
}
