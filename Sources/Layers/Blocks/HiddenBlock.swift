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

    public init(predLoss: Float = 0, simLoss: Float = 0, wrong: Int? = nil) {
        self.predLoss = predLoss
        self.simLoss = simLoss
        self.wrong = wrong
    }
}

/// A hidden block (DESIGN.md section 2): map (a Linear layer or a 3x3 conv, `HiddenMap`) ->
/// BatchNorm (per channel, over the batch and the positions) -> nonlinearity -> h; the next block
/// receives dropout(h) (whole channels of a feature map), max-pooled 2x2 when the model has an
/// `M` after this block. In local mode the block trains itself from its heads on h during the
/// forward sweep and keeps only the hand-off; in backprop mode it keeps what its backward needs
/// until the global backward pass.
public final class HiddenBlock<Map: HiddenMap> {
    public let index: Int
    public let map: Map
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
    /// The local heads (nil in backprop mode, and under the greedy schedule outside the block's
    /// round: `installHeads(rng:)` makes them when its round starts, `freeze()` drops them).
    public private(set) var heads: LocalHeads<Map>?
    /// The block's own optimizer in local mode (nil in backprop mode).
    public var optimizer: Optimizer?
    /// Greedy schedule: the block trains no more; its weights are booked as `frozenWeights` and
    /// it only runs `forwardEval`.
    public private(set) var isFrozen = false
    let ledger: Ledger
    /// What heads made later need (`installHeads`).
    private let classes: Int
    private let dimInDecoder: Int
    private let sharedWorkspace: ConvWorkspace?
    /// A dormant block's generator, where its weight and bias draws begin.
    private var weightDraws: Xoshiro256?

    /// What the block's backward reads, kept from the forward. Each field is released at its
    /// last use inside `backward(dh:state:wantInputGrad:)`, so in backprop mode a block's saved
    /// tensors go while the global backward passes through it, not at the end of the step.
    private struct Saved {
        var input: Tensor?
        var xhat: Tensor?
        var h: Tensor?
        var invStd: Tensor?
        /// Where each pooled value came from (backprop mode, blocks that pool).
        var argmax: TrackedBuffer<UInt8>?
        var dropoutSeed: UInt64
    }
    private var saved: Saved?

    /// Debug switch for the negative control of the memory proof: when set, the local step
    /// keeps its activations alive after the update instead of freeing them.
    package var retainActivationsForTesting = false
    public private(set) var retained: [Tensor] = []

    /// Draws the map's weight and bias (uniform +-1/sqrt(fan-in)), then the heads' tensors,
    /// from `rng` in that order. `withHeads: false` (greedy schedule) makes no heads and draws
    /// nothing for them: `installHeads(rng:)` makes them later. `dormant: true` (greedy
    /// schedule, later blocks) allocates no map weight until `wake()`, which draws the weight and
    /// bias from the generator as it was here.
    public init(index: Int, map: Map, poolAfter: Bool = false, classes: Int, dimInDecoder: Int, loss: LossKind, beta: Float,
                nonlinearity: Nonlinearity, dropout: Float, rng: inout Xoshiro256, ledger: Ledger,
                sharedWorkspace: ConvWorkspace? = nil, withHeads: Bool = true, dormant: Bool = false) {
        precondition(Map.isSpatial || !poolAfter, "only feature maps are pooled between blocks")
        self.index = index
        self.map = map
        self.poolAfter = poolAfter
        self.nonlinearity = nonlinearity
        self.dropout = dropout
        self.loss = loss
        self.beta = beta
        self.ledger = ledger
        self.classes = classes
        self.dimInDecoder = dimInDecoder
        self.sharedWorkspace = sharedWorkspace
        let prefix = "blocks.\(index).\(Map.kind)"
        weight = Parameter(name: "\(prefix).weight", shape: map.weightShape, category: .weights, layer: index,
                           label: Map.weightLabel, ledger: ledger, dormant: dormant)
        bias = Parameter(name: "\(prefix).bias", shape: [map.outChannels], category: .weights, layer: index,
                         label: Map.biasLabel, ledger: ledger)
        if dormant {
            // The draws happen at `wake()`, from the generator as it is now; the network's
            // generator moves past them, so later blocks draw what they would have drawn.
            weightDraws = rng
            for _ in 0..<(weight.count + bias.count) { _ = rng.next() }
        } else {
            let bound = 1 / Float(map.fanIn).squareRoot()
            weight.initUniform(bound: bound, rng: &rng)
            bias.initUniform(bound: bound, rng: &rng)
        }
        (bnWeight, bnBias, runningMean, runningVar) = BatchNormParameters.make(layer: index, channels: map.outChannels, ledger: ledger)
        heads = loss.isLocal && withHeads
            ? LocalHeads(loss: loss, output: map.outputFeatures, classes: classes, dimInDecoder: dimInDecoder, layer: index,
                         rng: &rng, ledger: ledger, sharedWorkspace: sharedWorkspace)
            : nil
    }

    /// Whether the map's weight is not allocated yet (greedy schedule, before the block's round).
    public var isDormant: Bool { weight.isDormant }

    /// Allocates and draws the map's weight (and draws the bias) of a dormant block: the same
    /// values an awake block of the same generator got at construction.
    public func wake() {
        guard isDormant, var rng = weightDraws else { return }
        weight.wake()
        let bound = 1 / Float(map.fanIn).squareRoot()
        weight.initUniform(bound: bound, rng: &rng)
        bias.initUniform(bound: bound, rng: &rng)
        weightDraws = nil
    }

    /// Makes the local heads, drawing their tensors from `rng` (greedy schedule: when the
    /// block's round starts).
    public func installHeads(rng: inout Xoshiro256) {
        precondition(heads == nil && loss.isLocal && !isFrozen, "block \(index): heads already made, frozen, or backprop mode")
        heads = LocalHeads(loss: loss, output: map.outputFeatures, classes: classes, dimInDecoder: dimInDecoder, layer: index,
                           rng: &rng, ledger: ledger, sharedWorkspace: sharedWorkspace)
    }

    /// Ends the block's training (greedy schedule): its heads and optimizer state are freed and
    /// its weights, BatchNorm parameters and running statistics are booked as `frozenWeights`.
    /// From now on it runs `forwardEval` only (running statistics, no dropout).
    public func freeze() {
        guard !isFrozen else { return }
        heads = nil
        optimizer = nil
        for p in parameters {
            p.state = []
            p.dropGrad()
            p.value.storage.rebook(as: .frozenWeights)
        }
        runningMean.storage.rebook(as: .frozenWeights)
        runningVar.storage.rebook(as: .frozenWeights)
        isFrozen = true
    }

    /// The block's own trainable parameters (without heads): these are counted in #params.
    public var parameters: [Parameter] { [weight, bias, bnWeight, bnBias] }
    /// Everything the block's local optimizer updates.
    public var localParameters: [Parameter] { parameters + (heads?.parameters ?? []) }

    /// One example's hand-off: (C, H', W') ((C, H'/2, W'/2) when the block pools), or (F).
    public var outputShape: [Int] {
        let out = map.outputFeatures
        guard Map.isSpatial else { return [out.channels] }
        return [out.channels, poolAfter ? out.height / 2 : out.height, poolAfter ? out.width / 2 : out.width]
    }

    private var channels: Int { map.outChannels }

    // MARK: forward pieces shared by every mode

    /// z = map(x) + b, then BatchNorm (training statistics): returns (xhat, h, invStd) with
    /// h = gamma xhat + beta before the nonlinearity. z becomes xhat in place; the batch mean
    /// (C) lives only inside this function.
    // x: (B, in...) -> xhat, h: (B, C, spatial...), invStd: (C)
    private func mapAndNorm(_ x: Tensor) -> (xhat: Tensor, h: Tensor, invStd: Tensor) {
        let shape = map.outputShape(batch: x.rowCount)
        let z = Tensor(shape, .activations, layer: index, label: "z", ledger: ledger, zeroed: false)
        map.forward(x: x, weight: weight.value, bias: bias.value, into: z)
        let h = Tensor(shape, .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        let invStd = Tensor([channels], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
        do {
            let mean = Tensor([channels], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
            StepProfiler.measure(.batchNorm, layer: index) {
                BatchNormKernel.forwardTraining(z: z, channels: channels, gamma: bnWeight.value, beta: bnBias.value,
                                                runningMean: runningMean, runningVar: runningVar,
                                                mean: mean, invStd: invStd, out: h)
            }
        }
        return (z, h, invStd)
    }

    /// Backward of `mapAndNorm` + nonlinearity, shared by both modes. `dh` holds dL/dh on
    /// entry and dL/dz on exit. Fills the BN and map gradients and returns dL/dx if asked.
    ///
    /// Lifetimes are explicit so that debug and release builds book the same bytes at the same
    /// points (ARC may otherwise free a temporary at its last use in one and at scope end in the
    /// other): `state.h` is released after the nonlinearity's backward, `state.xhat` and
    /// `state.invStd` after BatchNorm's, `state.input` after the map's backward. Released
    /// tensors are freed at once unless someone else holds them (the hand-off h in local mode,
    /// the caller's input).
    // dh: (B, C, spatial...), x: (B, in...) -> dx: (B, in...)
    private func backward(dh: Tensor, state: inout Saved, wantInputGrad: Bool) -> Tensor? {
        StepProfiler.measure(.activation, layer: index) { nonlinearity.backward(output: state.h!, grad: dh) }
        release(&state.h)
        let gammaGrad = bnWeight.makeGrad(), betaGrad = bnBias.makeGrad()
        do {
            let scratch = Tensor([2 * channels], .workspace, layer: index, label: "bn.scratch", ledger: ledger, zeroed: false)
            StepProfiler.measure(.batchNorm, layer: index) {
                BatchNormKernel.backward(grad: dh, xhat: state.xhat!, channels: channels, gamma: bnWeight.value, invStd: state.invStd!,
                                         gammaGrad: gammaGrad, betaGrad: betaGrad, scratch: scratch)
            }
        }
        release(&state.xhat)
        release(&state.invStd)
        let weightGrad = weight.makeGrad(), biasGrad = bias.makeGrad()
        let input = state.input!
        let dx = wantInputGrad
            ? Tensor(map.inputShape(batch: input.rowCount), .activationGrads, layer: index, label: "dx", ledger: ledger, zeroed: false)
            : nil
        map.backwardWeights(dy: dh, x: input, weightGrad: weightGrad, biasGrad: biasGrad, accumulate: false)
        if let dx { map.backwardData(dy: dh, weight: weight.value, into: dx, accumulate: false) }
        withExtendedLifetime(input) {}
        state.input = nil
        return dx
    }

    /// Drops a reference the step held; the negative control keeps the tensor alive instead.
    private func release(_ tensor: inout Tensor?) {
        if retainActivationsForTesting, let tensor, tensor.layer == index { retained.append(tensor) }
        tensor = nil
    }

    /// dropout(h) in place (whole channels of a feature map), then max-pooled into a new tensor
    /// if the model pools after this block (with the argmax when a backward will need it).
    // h: (B, C, H, W) -> (B, C, H/2, W/2), or h itself
    private func handOff(from h: Tensor, dropoutSeed: UInt64, argmax: Bool) -> (Tensor, TrackedBuffer<UInt8>?) {
        StepProfiler.measure(.dropoutPool, layer: index) {
            Dropout.apply(h, p: dropout, seed: dropoutSeed, channelSize: map.outSpatial)
        }
        guard poolAfter else { return (h, nil) }
        let pooled = Tensor(MaxPoolKernel.outputShape(h.shape), .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
        let indices = argmax ? MaxPoolKernel.makeArgmax(for: pooled, layer: index, ledger: ledger) : nil
        StepProfiler.measure(.dropoutPool, layer: index) { MaxPoolKernel.forward(x: h, into: pooled, argmax: indices) }
        return (pooled, indices)
    }

    // MARK: local mode

    /// One local step on a batch: forward, local loss, local backward (into this block and its
    /// heads only), the block's own optimizer step; every tensor it allocated is released at a
    /// fixed point (see `backward` and `LocalHeads.apply`) except the returned hand-off.
    ///
    /// Working set (what `MemoryPlanner` predicts from shapes for the mlp): the input hand-off
    /// (held by the caller for the whole step), xhat, h, invStd, dh and the heads' temporaries,
    /// then the gradients of the block and its heads, which live until the update and are
    /// dropped there.
    ///
    /// `chunk` smaller than the batch computes the same step in micro-batches of that many
    /// examples with recomputation (`trainLocalChunked`); nil (or the batch or more) is this path.
    public func trainLocal(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                           chunk: Int? = nil) -> (handOff: Tensor, stats: BlockStepStats) {
        StepProfiler.measure(.total, layer: index) { trainLocalTimed(x, labels: labels, lr: lr, dropoutSeed: dropoutSeed, chunk: chunk) }
    }

    private func trainLocalTimed(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                                 chunk: Int?) -> (handOff: Tensor, stats: BlockStepStats) {
        if let chunk, chunk < x.rowCount {
            let r = trainLocalChunked(.tensor(x), labels: labels, lr: lr, dropoutSeed: dropoutSeed, chunk: chunk, recomputeHandOff: false)
            return (r.handOff!.tensor, r.stats)
        }
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        ledger.enter(.forward, layer: index, label: "forward")
        var state = Saved(input: x, xhat: nil, h: nil, invStd: nil, argmax: nil, dropoutSeed: dropoutSeed)
        let h: Tensor
        do {
            let forward = mapAndNorm(x)
            h = forward.h
            state.xhat = forward.xhat
            state.invStd = forward.invStd
        }
        StepProfiler.measure(.activation, layer: index) { nonlinearity.forward(h) }
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
        StepProfiler.measure(.update, layer: index) { optimizer.step(lr: lr) }
        for p in localParameters { p.dropGrad() }
        // h is not needed any more: it becomes the hand-off in place (or is pooled into it).
        let (out, _) = handOff(from: h, dropoutSeed: dropoutSeed, argmax: false)
        return (out, stats)
    }

    // MARK: backprop mode

    /// Forward keeping what the backward needs (input, x-hat, h, BN statistics, the pooling's
    /// argmax); the hand-off is made from a copy of h, since the backward needs h itself.
    public func forwardBackprop(_ x: Tensor, dropoutSeed: UInt64) -> Tensor {
        StepProfiler.measure(.total, layer: index) { forwardBackpropTimed(x, dropoutSeed: dropoutSeed) }
    }

    private func forwardBackpropTimed(_ x: Tensor, dropoutSeed: UInt64) -> Tensor {
        ledger.enter(.forward, layer: index, label: "forward")
        let (xhat, h, invStd) = mapAndNorm(x)
        StepProfiler.measure(.activation, layer: index) { nonlinearity.forward(h) }
        let dropped = Tensor(h.shape, .activations, layer: index, label: poolAfter ? "dropped" : "handoff", ledger: ledger, zeroed: false)
        StepProfiler.measure(.dropoutPool, layer: index) { dropped.copy(from: h) }
        let (out, argmax) = handOff(from: dropped, dropoutSeed: dropoutSeed, argmax: true)
        saved = Saved(input: x, xhat: xhat, h: h, invStd: invStd, argmax: argmax, dropoutSeed: dropoutSeed)
        return out
    }

    /// Backward from dL/d(hand-off), which is overwritten when the block does not pool; leaves
    /// gradients in the block's parameters and returns dL/dx (nil for the first block, whose
    /// input needs none). The block's saved tensors are freed on the way (see `backward`).
    public func backwardBackprop(_ dHandOff: Tensor, wantInputGrad: Bool) -> Tensor? {
        StepProfiler.measure(.total, layer: index) { backwardBackpropTimed(dHandOff, wantInputGrad: wantInputGrad) }
    }

    private func backwardBackpropTimed(_ dHandOff: Tensor, wantInputGrad: Bool) -> Tensor? {
        guard var state = saved else { preconditionFailure("block \(index): backward without forward") }
        saved = nil
        ledger.enter(.backward, layer: index, label: "backward")
        // The next block may hand back a flat (B, C h' w') gradient (the classifier's Linear
        // block): view it in the hand-off's shape. A view, no bytes booked.
        let dy = dHandOff.reshaped([dHandOff.rowCount] + outputShape)
        var dh = dy
        if let argmax = state.argmax {
            dh = Tensor(state.h!.shape, .activationGrads, layer: index, label: "dh", ledger: ledger, zeroed: false)
            StepProfiler.measure(.dropoutPool, layer: index) { MaxPoolKernel.backward(dy: dy, argmax: argmax, into: dh) }
            state.argmax = nil
        }
        StepProfiler.measure(.dropoutPool, layer: index) { Dropout.apply(dh, p: dropout, seed: state.dropoutSeed, channelSize: map.outSpatial) }
        return backward(dh: dh, state: &state, wantInputGrad: wantInputGrad)
    }

    // MARK: evaluation

    /// Inference: BatchNorm with running statistics, no dropout, no heads.
    // x: (B, in...) -> (B, outputShape...)
    public func forwardEval(_ x: Tensor) -> Tensor {
        ledger.enter(.evaluate, layer: index, label: "evaluate")
        let h = Tensor(map.outputShape(batch: x.rowCount), .activations, layer: index, label: "h", ledger: ledger, zeroed: false)
        map.forward(x: x, weight: weight.value, bias: bias.value, into: h)
        BatchNormKernel.forwardEval(z: h, channels: channels, gamma: bnWeight.value, beta: bnBias.value,
                                    runningMean: runningMean, runningVar: runningVar, out: h)
        nonlinearity.forward(h)
        guard poolAfter else { return h }
        let pooled = Tensor(MaxPoolKernel.outputShape(h.shape), .activations, layer: index, label: "pooled", ledger: ledger, zeroed: false)
        MaxPoolKernel.forward(x: h, into: pooled)
        return pooled
    }

    /// Releases what a negative-control run kept.
    public func releaseRetained() { retained = [] }
}

extension HiddenBlock where Map == LinearMap {
    /// A Linear block of `outFeatures` units reading `inFeatures` (flattened) values an example.
    public convenience init(index: Int, inFeatures: Int, outFeatures: Int, classes: Int, loss: LossKind, beta: Float,
                            nonlinearity: Nonlinearity, dropout: Float, rng: inout Xoshiro256, ledger: Ledger,
                            withHeads: Bool = true, dormant: Bool = false) {
        self.init(index: index, map: LinearMap(inFeatures: inFeatures, outFeatures: outFeatures), classes: classes,
                  dimInDecoder: outFeatures, loss: loss, beta: beta, nonlinearity: nonlinearity, dropout: dropout,
                  rng: &rng, ledger: ledger, withHeads: withHeads, dormant: dormant)
    }

    public var inFeatures: Int { map.inFeatures }
    public var outFeatures: Int { map.outFeatures }
}

extension HiddenBlock where Map == ConvMap {
    /// A conv block over `geometry`; its scratch is a view of `sharedWorkspace` when given.
    public convenience init(index: Int, geometry: ConvGeometry, poolAfter: Bool, classes: Int, dimInDecoder: Int,
                            loss: LossKind, beta: Float, nonlinearity: Nonlinearity, dropout: Float,
                            rng: inout Xoshiro256, ledger: Ledger, sharedWorkspace: ConvWorkspace? = nil, withHeads: Bool = true,
                            dormant: Bool = false) {
        self.init(index: index, map: ConvMap(geometry, layer: index, ledger: ledger, sharedWorkspace: sharedWorkspace),
                  poolAfter: poolAfter, classes: classes, dimInDecoder: dimInDecoder, loss: loss, beta: beta,
                  nonlinearity: nonlinearity, dropout: dropout, rng: &rng, ledger: ledger, sharedWorkspace: sharedWorkspace,
                  withHeads: withHeads, dormant: dormant)
    }

    public var geometry: ConvGeometry { map.geometry }
    public var workspace: ConvWorkspace { map.workspace }
}
