import MemoryLedger
import Randomness
import Tensors

/// Statistics of one block's local step.
public struct BlockStepStats: Sendable {
    public var predLoss: Float = 0
    public var simLoss: Float = 0
    /// Local pred-head errors in this batch (nil when the block has no classifying head).
    public var wrong: Int?
    public var loss: Float { predLoss + simLoss }
}

/// A hidden block: Linear -> BatchNorm -> nonlinearity -> h; the next block receives
/// dropout(h). In local mode the block trains itself from its heads on h during the forward
/// sweep; in backprop mode it keeps what its backward needs until the global backward pass.
public final class LinearBlock {
    public let index: Int
    public let inFeatures: Int
    public let outFeatures: Int
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
    public let heads: LocalHeads?
    /// The block's own optimizer in local mode (nil in backprop mode).
    public var optimizer: Optimizer?
    let ledger: Ledger

    /// What the block's backward reads, kept from the forward. Each field is released at its
    /// last use inside `backward(dh:state:wantInputGrad:)`, so in backprop mode a block's saved
    /// tensors go while the global backward passes through it, not at the end of the step.
    private struct Saved {
        var input: Tensor?
        var xhat: Tensor?
        var h: Tensor?
        var invStd: Tensor?
        var dropoutSeed: UInt64
    }
    private var saved: Saved?

    /// Debug switch for the negative control of the memory proof: when set, the local step
    /// keeps its activations alive after the update instead of freeing them.
    public var retainActivationsForTesting = false
    public private(set) var retained: [Tensor] = []

    public init(index: Int, inFeatures: Int, outFeatures: Int, classes: Int, loss: LossKind, beta: Float,
                nonlinearity: Nonlinearity, dropout: Float, rng: inout Xoshiro256, ledger: Ledger) {
        self.index = index
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.nonlinearity = nonlinearity
        self.dropout = dropout
        self.loss = loss
        self.beta = beta
        self.ledger = ledger
        let prefix = "blocks.\(index)"
        weight = Parameter(name: "\(prefix).linear.weight", shape: [outFeatures, inFeatures], category: .weights, layer: index, label: "linear.weight", ledger: ledger)
        bias = Parameter(name: "\(prefix).linear.bias", shape: [outFeatures], category: .weights, layer: index, label: "linear.bias", ledger: ledger)
        let bound = 1 / Float(inFeatures).squareRoot()
        weight.initUniform(bound: bound, rng: &rng)
        bias.initUniform(bound: bound, rng: &rng)
        (bnWeight, bnBias, runningMean, runningVar) = BatchNormParameters.make(layer: index, channels: outFeatures, ledger: ledger)
        heads = loss.isLocal ? LocalHeads(loss: loss, features: outFeatures, classes: classes, layer: index, rng: &rng, ledger: ledger) : nil
    }

    /// The block's own trainable parameters (without heads): these are counted in #params.
    public var parameters: [Parameter] { [weight, bias, bnWeight, bnBias] }
    /// Everything the block's local optimizer updates.
    public var localParameters: [Parameter] { parameters + (heads?.parameters ?? []) }

    // MARK: forward pieces shared by every mode

    /// z = x W^T + b, then BatchNorm (training statistics): returns (xhat, h, invStd) with
    /// h = gamma xhat + beta before the nonlinearity. z becomes xhat in place; the batch mean
    /// (F) lives only inside this function.
    // x: (B, in) -> xhat, h: (B, F), invStd: (F)
    private func linearAndNorm(_ x: Tensor) -> (xhat: Tensor, h: Tensor, invStd: Tensor) {
        let batch = x.rowCount
        let z = Tensor([batch, outFeatures], .activations, layer: index, label: "z", ledger: ledger, zeroed: false)
        LinearKernel.forward(x: x.reshaped([batch, inFeatures]), weight: weight.value, bias: bias.value, into: z)
        let h = Tensor([batch, outFeatures], .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        let invStd = Tensor([outFeatures], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
        do {
            let mean = Tensor([outFeatures], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
            BatchNormKernel.forwardTraining(z: z, channels: outFeatures, gamma: bnWeight.value, beta: bnBias.value,
                                            runningMean: runningMean, runningVar: runningVar,
                                            mean: mean, invStd: invStd, out: h)
        }
        return (z, h, invStd)
    }

    /// Backward of `linearAndNorm` + nonlinearity, shared by both modes. `dh` holds dL/dh on
    /// entry and dL/dz on exit. Fills the BN and Linear gradients and returns dL/dx if asked.
    ///
    /// Lifetimes are explicit so that debug and release builds book the same bytes at the same
    /// points (ARC may otherwise free a temporary at its last use in one and at scope end in the
    /// other): `state.h` is released after the nonlinearity's backward, `state.xhat` and
    /// `state.invStd` after BatchNorm's, `state.input` after the Linear backward. Released
    /// tensors are freed at once unless someone else holds them (the hand-off h in local mode,
    /// the caller's input).
    // dh: (B, F), x: (B, in) -> dx: (B, in)
    private func backward(dh: Tensor, state: inout Saved, wantInputGrad: Bool) -> Tensor? {
        nonlinearity.backward(output: state.h!, grad: dh)
        release(&state.h)
        let gammaGrad = bnWeight.makeGrad(), betaGrad = bnBias.makeGrad()
        do {
            let scratch = Tensor([2 * outFeatures], .workspace, layer: index, label: "bn.scratch", ledger: ledger, zeroed: false)
            BatchNormKernel.backward(grad: dh, xhat: state.xhat!, channels: outFeatures, gamma: bnWeight.value, invStd: state.invStd!,
                                     gammaGrad: gammaGrad, betaGrad: betaGrad, scratch: scratch)
        }
        release(&state.xhat)
        release(&state.invStd)
        let weightGrad = weight.makeGrad(), biasGrad = bias.makeGrad()
        let input = state.input!
        let batch = input.rowCount
        let dx = wantInputGrad ? Tensor([batch, inFeatures], .activationGrads, layer: index, label: "dx", ledger: ledger, zeroed: false) : nil
        LinearKernel.backward(dy: dh, x: input.reshaped([batch, inFeatures]), weight: weight.value,
                              weightGrad: weightGrad, biasGrad: biasGrad, inputGrad: dx)
        withExtendedLifetime(input) {}
        state.input = nil
        return dx
    }

    /// Drops a reference the step held; the negative control keeps the tensor alive instead.
    private func release(_ tensor: inout Tensor?) {
        if retainActivationsForTesting, let tensor, tensor.layer == index { retained.append(tensor) }
        tensor = nil
    }

    // MARK: local mode

    /// One local step on a batch: forward, local loss, local backward (into this block and its
    /// heads only), the block's own optimizer step; every tensor it allocated is released at a
    /// fixed point (see `backward` and `LocalHeads.apply`) except the returned hand-off dropout(h).
    ///
    /// Working set (what `MemoryPlanner` predicts from shapes): the input hand-off (held by the
    /// caller for the whole step), xhat, h, invStd, dh and the heads' temporaries, then the
    /// gradients of the block and its heads, which live until the update and are dropped there.
    ///
    /// `chunk` smaller than the batch computes the same step in micro-batches of that many
    /// examples with recomputation (`trainLocalChunked`); nil (or the batch or more) is this path.
    public func trainLocal(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                           chunk: Int? = nil) -> (handOff: Tensor, stats: BlockStepStats) {
        if let chunk, chunk < x.rowCount {
            return trainLocalChunked(x, labels: labels, lr: lr, dropoutSeed: dropoutSeed, chunk: chunk)
        }
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        ledger.enter(.forward, layer: index, label: "forward")
        var state = Saved(input: x, xhat: nil, h: nil, invStd: nil, dropoutSeed: dropoutSeed)
        let h: Tensor
        do {
            let forward = linearAndNorm(x)
            h = forward.h
            state.xhat = forward.xhat
            state.invStd = forward.invStd
        }
        nonlinearity.forward(h)
        state.h = h

        ledger.enter(.localLoss, layer: index, label: "localLoss")
        var dh: Tensor? = Tensor(h.shape, .activationGrads, layer: index, label: "dh", ledger: ledger)
        let (pred, sim) = heads.apply(h: h, labels: labels, dh: dh!, beta: beta)
        var stats = BlockStepStats(predLoss: pred.loss, simLoss: sim.loss)
        if let correct = pred.correct { stats.wrong = x.rowCount - correct }

        ledger.enter(.backward, layer: index, label: "backward")
        _ = backward(dh: dh!, state: &state, wantInputGrad: false)
        release(&dh)

        ledger.enter(.update, layer: index, label: "update")
        optimizer.step(lr: lr)
        for p in localParameters { p.dropGrad() }
        // h is not needed any more: it becomes the hand-off in place.
        Dropout.apply(h, p: dropout, seed: dropoutSeed)
        return (h, stats)
    }

    // MARK: backprop mode

    /// Forward keeping what the backward needs (input, x-hat, h, BN statistics); the hand-off
    /// is a copy of h with dropout, since the backward needs h itself.
    public func forwardBackprop(_ x: Tensor, dropoutSeed: UInt64) -> Tensor {
        ledger.enter(.forward, layer: index, label: "forward")
        let (xhat, h, invStd) = linearAndNorm(x)
        nonlinearity.forward(h)
        let handOff = Tensor(h.shape, .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
        handOff.copy(from: h)
        Dropout.apply(handOff, p: dropout, seed: dropoutSeed)
        saved = Saved(input: x, xhat: xhat, h: h, invStd: invStd, dropoutSeed: dropoutSeed)
        return handOff
    }

    /// Backward from dL/d(hand-off), which is overwritten; leaves gradients in the block's
    /// parameters and returns dL/dx (nil for the first block, whose input needs none). The
    /// block's saved tensors are freed on the way (see `backward`).
    public func backwardBackprop(_ dHandOff: Tensor, wantInputGrad: Bool) -> Tensor? {
        guard var state = saved else { preconditionFailure("block \(index): backward without forward") }
        saved = nil
        ledger.enter(.backward, layer: index, label: "backward")
        Dropout.apply(dHandOff, p: dropout, seed: state.dropoutSeed)
        return backward(dh: dHandOff, state: &state, wantInputGrad: wantInputGrad)
    }

    // MARK: evaluation

    /// Inference: BatchNorm with running statistics, no dropout, no heads.
    public func forwardEval(_ x: Tensor) -> Tensor {
        ledger.enter(.evaluate, layer: index, label: "evaluate")
        let batch = x.rowCount
        let h = Tensor([batch, outFeatures], .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        LinearKernel.forward(x: x.reshaped([batch, inFeatures]), weight: weight.value, bias: bias.value, into: h)
        BatchNormKernel.forwardEval(z: h, channels: outFeatures, gamma: bnWeight.value, beta: bnBias.value,
                                    runningMean: runningMean, runningVar: runningVar, out: h)
        nonlinearity.forward(h)
        return h
    }

    /// Releases what a negative-control run kept.
    public func releaseRetained() { retained = [] }
}
