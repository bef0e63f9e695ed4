import Layers
import MemoryLedger
import Reports

/// One layer of a plan: its parameters and what a step of it needs.
public struct LayerPlan: Equatable, Sendable, Codable {
    public var index: Int
    /// "linear 1024", "output 10".
    public var name: String
    /// Trainable parameters of the layer itself (the paper's #params).
    public var params: Int
    /// Trained local-head parameters (0 in backprop mode).
    public var headParams: Int
    /// Local-head parameters (trained or fixed) booked as `headWeights`, in elements.
    public var headElements: Int
    /// Optimizer state of the layer and its trained heads, bytes.
    public var optimizerStateBytes: Int
    /// The working set W_k (local mode; nil in backprop mode), bytes. See `MemoryPlanner`.
    public var workingSetBytes: Int?
    /// The activation handed to the next layer, bytes (0 for the output layer).
    public var handOffBytes: Int
}

/// What the planner predicts for one mode.
public struct MemoryPlan: Equatable, Sendable, Codable {
    public var loss: LossKind
    public var batchSize: Int
    /// "local" or "backprop".
    public var mode: String { loss.isLocal ? "local" : "backprop" }
    /// Bytes that live for the whole run: weights, head weights, optimizer state, the input batch.
    public var persistent: CategoryBytes
    public var layers: [LayerPlan]
    /// The ledger's high-water mark over a step, all categories (the loader's buffers excluded:
    /// they depend on the shard blocks, not on the model), and its breakdown at that instant.
    public var peak: Int
    public var peakBreakdown: CategoryBytes
    /// Highest transient bytes over the step (the peak minus the persistent bytes).
    public var peakTransient: Int { peak - persistent.total }
    /// Local mode: the largest W_k.
    public var largestWorkingSet: Int? { layers.compactMap(\.workingSetBytes).max() }
}

/// Predicts a training step's ledger figures from the model's shapes, batch size, mode and
/// optimizer, before anything is allocated. Exact for the ledger's categories: the proof tests
/// (Tests/TrainingTests/MemoryProof*.swift) check every prediction against a measured step.
///
/// **The working set W_k** of hidden block k in local mode is the highest number of live bytes
/// of the transient categories (activations, activationGrads, lossTemp, gradients, workspace)
/// at any instant of block k's local step: from its forward marker until the step has returned
/// and the caller has dropped the block's input. It includes the input hand-off (block k-1's
/// dropout(h), B x in_k floats, live for the whole step; block 0's input is the batch, booked
/// as `input` and counted with the persistent bytes instead). For the output layer W is
/// defined the same way. Because a block frees everything but its hand-off, nothing transient
/// but the hand-off crosses from one block's step to the next, and
///
///     local peak    = weights + head weights + optimizer state + input batch + max_k W_k
///     backprop peak = weights + optimizer state + input batch + max over the step of
///                     (saved activations of the blocks not yet back-propagated
///                      + gradients of the parameters already reached + the block's temporaries)
///
/// For a Linear block (B batch, n inputs, F units, K classes, 4-byte floats) the local step
/// usually peaks when the Linear weight gradient is booked in the backward (x-hat and invStd
/// are already freed there):
///     W_k = 4 [ B n (hand-off in, k >= 1) + 2 B F (h, dh)
///               + head gradients (pred: K F + K; sim: F F; pred-bpf: 128 F + 128)
///               + 2 F (BN gradients) + F n + F (Linear gradients) ]
/// e.g. mlp 3x1024, predsim, batch 128, block 1: 10,014,760 bytes. A head's temporaries can
/// peak higher at a large batch (sim: 3 B F + 2 B^2 + ... in its loss); the replay takes the
/// maximum over every instant.
/// The backprop peak is reached in block 0's backward, when every gradient is live.
///
/// The prediction is a replay of the step's allocations in code order (`AllocationReplay`),
/// so the maximum over the step is exact whatever layer or instant it falls on.
public enum MemoryPlanner {
    /// Whether the planner models `spec`'s layers: the mlp today. Conv blocks (vgg8b, vgg11b)
    /// are not replayed yet; `layerwise profile` measures them without a prediction.
    public static func covers(_ spec: ModelSpec) -> Bool { spec.kind == .mlp }

    /// The plan for `spec` in its own mode (local for a local loss, backprop for `.backprop`).
    /// - Precondition: `covers(spec)`.
    public static func plan(_ spec: ModelSpec, batchSize: Int, optimizer: OptimizerSettings = OptimizerSettings()) -> MemoryPlan {
        precondition(covers(spec), "the memory planner covers the mlp only, not \(spec.kind.rawValue)")
        let shapes = LayerShape.layers(of: spec)
        let moments = optimizer.kind == .adam ? 2 : 1
        let b = batchSize
        var replay = AllocationReplay()
        var layers: [LayerPlan] = []

        // Persistent bytes, booked when the network and the batch are made.
        for shape in shapes {
            replay.allocate("\(shape.index).weights", .weights, floats: shape.weightElements)
            if spec.loss.isLocal, shape.headElements(spec.loss) > 0 {
                replay.allocate("\(shape.index).heads", .headWeights, floats: shape.headElements(spec.loss))
            }
            let trained = shape.params + (spec.loss.isLocal ? shape.trainedHeadParams(spec.loss) : 0)
            replay.allocate("\(shape.index).optimizer", .optimizerState, floats: moments * trained)
        }
        replay.allocate("input", .input, floats: b * spec.inputFeatures)
        let persistent = replay.live

        if spec.loss.isLocal {
            for shape in shapes {
                replay.beginWindow()
                shape.replayLocalStep(&replay, batch: b, loss: spec.loss)
                layers.append(shape.plan(spec.loss, moments: moments, batch: b, workingSet: replay.windowPeak))
            }
        } else {
            for shape in shapes { shape.replayBackpropForward(&replay, batch: b) }
            for shape in shapes.reversed() { shape.replayBackpropBackward(&replay, batch: b) }
            replay.freeAll(prefix: "grad.")
            layers = shapes.map { $0.plan(spec.loss, moments: moments, batch: b, workingSet: nil) }
        }
        precondition(replay.transient == 0, "planner: a step left transient bytes behind")
        return MemoryPlan(loss: spec.loss, batchSize: b, persistent: persistent, layers: layers,
                          peak: replay.peak, peakBreakdown: replay.peakBreakdown)
    }

    /// Plans for every training signal of the same model and batch, ordered from the smallest
    /// predicted peak: which mode needs less, and which fit a budget.
    public static func alternatives(_ spec: ModelSpec, batchSize: Int, optimizer: OptimizerSettings = OptimizerSettings()) -> [MemoryPlan] {
        LossKind.allCases.map { loss -> MemoryPlan in
            var s = spec
            s.loss = loss
            return plan(s, batchSize: batchSize, optimizer: optimizer)
        }.sorted { $0.peak < $1.peak }
    }
}

/// The shape of one layer of the step, as the planner sees it. Hidden Linear blocks and the
/// output layer today; conv blocks and pooling add cases here.
struct LayerShape {
    enum Kind { case linear, output }
    var kind: Kind
    var index: Int
    var inFeatures: Int
    var outFeatures: Int
    var classes: Int

    static let projection = LossKind.projectionSize

    static func layers(of spec: ModelSpec) -> [LayerShape] {
        var layers: [LayerShape] = []
        var inFeatures = spec.inputFeatures
        for i in 0..<spec.numLayers {
            layers.append(LayerShape(kind: .linear, index: i, inFeatures: inFeatures, outFeatures: spec.numHidden, classes: spec.classes))
            inFeatures = spec.numHidden
        }
        layers.append(LayerShape(kind: .output, index: spec.numLayers, inFeatures: inFeatures, outFeatures: spec.classes, classes: spec.classes))
        return layers
    }

    /// Trainable parameters without heads.
    var params: Int {
        switch kind {
        case .linear: return outFeatures * inFeatures + 3 * outFeatures  // W, b, BN gamma and beta
        case .output: return outFeatures * inFeatures + outFeatures
        }
    }

    /// Everything booked as `weights`: the parameters plus BN running mean and variance.
    var weightElements: Int { params + (kind == .linear ? 2 * outFeatures : 0) }

    /// Head tensors booked as `headWeights`, trained or fixed.
    func headElements(_ loss: LossKind) -> Int {
        guard kind == .linear, loss.isLocal else { return 0 }
        let f = outFeatures, p = LayerShape.projection
        var total = trainedHeadParams(loss)
        if loss.isBackpropFree { total += p * classes }               // label projection P
        if loss.usesPred && loss.isBackpropFree { total += p * f }    // feedback matrix B
        return total
    }

    /// Head parameters the block's optimizer trains.
    func trainedHeadParams(_ loss: LossKind) -> Int {
        guard kind == .linear, loss.isLocal else { return 0 }
        let f = outFeatures, p = LayerShape.projection
        var total = 0
        if loss.usesPred { total += loss.isBackpropFree ? p * f + p : classes * f + classes }
        if loss.usesSim && !loss.isBackpropFree { total += f * f }
        return total
    }

    func plan(_ loss: LossKind, moments: Int, batch: Int, workingSet: Int?) -> LayerPlan {
        let trained = params + (loss.isLocal ? trainedHeadParams(loss) : 0)
        return LayerPlan(index: index, name: kind == .linear ? "linear \(outFeatures)" : "output \(outFeatures)",
                         params: params, headParams: loss.isLocal ? trainedHeadParams(loss) : 0, headElements: headElements(loss),
                         optimizerStateBytes: moments * trained * MemoryLayout<Float>.stride,
                         workingSetBytes: workingSet,
                         handOffBytes: kind == .linear ? batch * outFeatures * MemoryLayout<Float>.stride : 0)
    }

    // MARK: local step (mirrors HiddenBlock<LinearMap>.trainLocal, LocalHeads.apply, OutputLayer.train)

    /// The name of this layer's input: the batch for layer 0, else the previous hand-off.
    private var inputName: String { index == 0 ? "input" : "\(index - 1).handoff" }

    func replayLocalStep(_ r: inout AllocationReplay, batch b: Int, loss: LossKind) {
        let k = "\(index).", f = outFeatures, n = inFeatures
        switch kind {
        case .linear:
            // forward: z (becomes x-hat), h, invStd; the batch mean only inside BatchNorm
            r.allocate(k + "xhat", .activations, floats: b * f)
            r.allocate(k + "handoff", .activations, floats: b * f)  // h, the hand-off in place
            r.allocate(k + "invStd", .activations, floats: f)
            r.allocate(k + "mean", .activations, floats: f)
            r.free(k + "mean")
            // local loss
            r.allocate(k + "dh", .activationGrads, floats: b * f)
            replayHeads(&r, batch: b, loss: loss)
            // backward: BN gradients and scratch; x-hat and invStd go; Linear gradients
            r.allocate("grad." + k + "bn", .gradients, floats: 2 * f)
            r.allocate(k + "bn.scratch", .workspace, floats: 2 * f)
            r.free(k + "bn.scratch", k + "xhat", k + "invStd")
            r.allocate("grad." + k + "linear", .gradients, floats: f * n + f)
            r.free(k + "dh")
            // update: every gradient of the block and its heads is dropped
            r.freeAll(prefix: "grad." + k)
            if index > 0 { r.free(inputName) }  // the caller drops the block's input
        case .output:
            r.allocate(k + "logits", .activations, floats: b * f)
            r.allocate("grad." + k + "linear", .gradients, floats: f * n + f)
            r.free(k + "logits")
            if index > 0 { r.free(inputName) }
            r.freeAll(prefix: "grad." + k)
        }
    }

    private func replayHeads(_ r: inout AllocationReplay, batch b: Int, loss: LossKind) {
        let k = "\(index).", f = outFeatures, p = LayerShape.projection
        if loss.usesPred && !loss.isBackpropFree {
            r.allocate(k + "pred.logits", .activations, floats: b * classes)
            r.allocate("grad." + k + "pred", .gradients, floats: classes * f + classes)
            r.free(k + "pred.logits")
        }
        if loss.usesPred && loss.isBackpropFree {
            r.allocate(k + "bpf.logits", .activations, floats: b * p)
            r.allocate(k + "bpf.target", .lossTemp, floats: b * p)
            r.free(k + "bpf.target")
            r.allocate("grad." + k + "decoder", .gradients, floats: p * f + p)
            r.free(k + "bpf.logits")
        }
        if loss.usesSim {
            // target S(Y) (B, B), built from the one-hot (or projected) labels
            let labelWidth = loss.isBackpropFree ? p : classes
            r.allocate(k + "sim.y", .lossTemp, floats: b * labelWidth)
            r.allocate(k + "sim.target.u", .lossTemp, floats: b * labelWidth)
            r.allocate(k + "sim.target.norms", .lossTemp, floats: b)
            r.allocate(k + "sim.target", .lossTemp, floats: b * b)
            r.free(k + "sim.target.u", k + "sim.target.norms", k + "sim.y")
            let learned = !loss.isBackpropFree
            if learned { r.allocate(k + "sim.features", .activations, floats: b * f) }
            r.allocate(k + "sim.u", .activations, floats: b * f)
            r.allocate(k + "sim.norms", .activations, floats: b)
            r.allocate(k + "sim.matrix", .lossTemp, floats: b * b)
            if learned { r.free(k + "sim.features") }
            r.free(k + "sim.target")
            r.allocate(k + "sim.grad", .activationGrads, floats: b * f)
            r.free(k + "sim.u", k + "sim.norms", k + "sim.matrix")
            if learned { r.allocate("grad." + k + "sim", .gradients, floats: f * f) }
            r.free(k + "sim.grad")
        }
    }

    // MARK: backprop step (mirrors forwardBackprop / backwardBackprop and Network.trainStep)

    func replayBackpropForward(_ r: inout AllocationReplay, batch b: Int) {
        let k = "\(index).", f = outFeatures
        switch kind {
        case .linear:
            r.allocate(k + "xhat", .activations, floats: b * f)
            r.allocate(k + "h", .activations, floats: b * f)
            r.allocate(k + "invStd", .activations, floats: f)
            r.allocate(k + "mean", .activations, floats: f)
            r.free(k + "mean")
            r.allocate(k + "handoff", .activations, floats: b * f)  // dropout(h), a copy
        case .output:
            r.allocate(k + "logits", .activations, floats: b * f)
            r.allocate(k + "dx", .activationGrads, floats: b * inFeatures)
            r.allocate("grad." + k + "linear", .gradients, floats: f * inFeatures + f)
            r.free(k + "logits")
            if index > 0 { r.free(inputName) }  // the last hand-off
        }
    }

    func replayBackpropBackward(_ r: inout AllocationReplay, batch b: Int) {
        guard kind == .linear else { return }
        let k = "\(index).", f = outFeatures, n = inFeatures
        r.free(k + "h")
        r.allocate("grad." + k + "bn", .gradients, floats: 2 * f)
        r.allocate(k + "bn.scratch", .workspace, floats: 2 * f)
        r.free(k + "bn.scratch", k + "xhat", k + "invStd")
        r.allocate("grad." + k + "linear", .gradients, floats: f * n + f)
        if index > 0 { r.allocate(k + "dx", .activationGrads, floats: b * n) }
        if index > 0 { r.free(inputName) }
        r.free("\(index + 1).dx")  // the incoming gradient, dropped when this block returns
    }
}
