import MemoryLedger
import Randomness
import Tensors

/// Statistics of one training step.
public struct StepStats: Sendable {
    public var outputLoss: Float
    public var correct: Int
    /// The blocks that trained, from `firstBlock` on (every block, except under the greedy
    /// schedule: only the round's).
    public var blocks: [BlockStepStats]
    /// Index of `blocks[0]`.
    public var firstBlock: Int = 0
    /// Whether the output layer trained (greedy schedule: in the last round only); when it
    /// did not, `outputLoss` and `correct` are 0.
    public var outputTrained = true

    public init(outputLoss: Float, correct: Int, blocks: [BlockStepStats], firstBlock: Int = 0, outputTrained: Bool = true) {
        self.outputLoss = outputLoss
        self.correct = correct
        self.blocks = blocks
        self.firstBlock = firstBlock
        self.outputTrained = outputTrained
    }
}

/// A model built from a spec: hidden blocks and the output layer, trained locally or by
/// global backprop in the same engine.
public final class Network {
    public let spec: ModelSpec
    /// The layers' shapes, parameter counts and conv scratch, compiled from `spec`.
    public let table: ShapeTable
    /// Conv blocks (VGG family), in order, before the Linear blocks; empty for the mlp. A
    /// network of one pipeline stage (`heldBlocks`) has only its own.
    public let convBlocks: [HiddenBlock<ConvMap>]
    /// The conv scratch every conv block and sim head uses a view of (nil for the mlp).
    public let convWorkspace: ConvWorkspace?
    /// Hidden Linear blocks: the mlp's blocks, or the VGG's classifier block (a stage's network:
    /// only its own).
    public let blocks: [HiddenBlock<LinearMap>]
    /// The hidden blocks this network holds: all of them, or one pipeline stage's (see `init`).
    public let heldBlocks: Range<Int>
    /// Conv blocks of the model before `convBlocks[0]`, and Linear blocks before `blocks[0]`.
    let convOffset: Int, linearOffset: Int
    public let output: OutputLayer
    /// The single optimizer of backprop mode (nil in local mode).
    public private(set) var globalOptimizer: Optimizer?
    public let ledger: Ledger
    /// Seed for dropout masks: the mask of (step, layer) is derived from it, so the backward
    /// regenerates it and a resumed run draws the same masks.
    public let seed: UInt64
    /// Local mode: run each block's local step in micro-batches of this many examples with
    /// recomputation (`--chunk`): the same numbers as the whole batch, activation memory of one
    /// chunk plus the block's input and hand-off. nil: whole batches. Backprop mode ignores it.
    /// Not part of the model: a run may change it between steps.
    public var chunkSize: Int?
    /// Local mode, whole batches: the conv sim heads keep their output for the backward instead
    /// of recomputing it (`LocalHeads.keepsSimOutput`, `--sim-output keep`): fewer FLOPs, more
    /// activation memory. Not part of the model: the same numbers either way.
    public var keepsSimOutput = false {
        didSet {
            for b in convBlocks { b.heads?.keepsSimOutput = keepsSimOutput }
            for b in blocks { b.heads?.keepsSimOutput = keepsSimOutput }
        }
    }
    /// Simultaneous (the paper's) or greedy, block by block (see `beginRound`).
    public let schedule: TrainingSchedule
    /// Greedy schedule: the block that trains now (nil before `beginRound`, and always under
    /// the simultaneous schedule).
    public internal(set) var round: Int?
    let optimizerSettings: OptimizerSettings

    /// - Parameters:
    ///   - engine: which code runs the convolutions (`ConvEngine.default` reads the environment).
    ///   - held: a pipeline stage's consecutive blocks (nil: all). The network then keeps only
    ///     those blocks (and their optimizers), plus the output layer, which only the stage
    ///     holding the last block trains (it has its optimizer); the blocks before are drawn and
    ///     dropped one at a time, so every held block starts with the whole network's weights.
    ///     The simultaneous schedule with a local loss only.
    ///   - schedule: `.greedy` (a local loss only) builds no heads and no optimizers: each
    ///     block gets them when its round starts (`beginRound`), its heads drawn from a generator
    ///     of (seed, block). So with the same seed the greedy network's initial heads differ from
    ///     the simultaneous one's, and so do the weights of every block after the first and of the
    ///     output layer (the shared generator draws no head tensors between them). Its blocks'
    ///     map weights are dormant until their round (`HiddenBlock.wake()`): a block that has
    ///     not trained yet costs only its bias and BatchNorm tensors.
    public init(spec: ModelSpec, seed: UInt64, optimizer settings: OptimizerSettings = OptimizerSettings(), ledger: Ledger = .shared,
                engine: ConvEngine = .default, schedule: TrainingSchedule = .simultaneous, holding held: Range<Int>? = nil) {
        precondition(schedule == .simultaneous || spec.loss.isLocal, "the greedy schedule needs a local loss")
        let all = 0..<spec.hiddenBlockCount
        let held = held ?? all
        precondition(held == all || (spec.loss.isLocal && schedule == .simultaneous && !held.isEmpty && all.contains(held.lowerBound)
                                     && held.upperBound <= all.upperBound), "a stage holds consecutive blocks of a local, simultaneous network")
        heldBlocks = held
        self.spec = spec
        self.seed = seed
        self.ledger = ledger
        self.schedule = schedule
        optimizerSettings = settings
        let withHeads = schedule == .simultaneous
        var rng = Xoshiro256(seed: Xoshiro256.derive(seed, 0x1417))
        // The blocks are built from the shape table, which the memory planner reads too.
        let table = ShapeTable(spec: spec, engine: engine)
        self.table = table
        // One conv workspace for the whole network: blocks (and their sim heads) run one at a time
        // in both modes, so one allocation of the largest bound serves every conv. At vgg8b,
        // batch 128: 8.6 MiB instead of 23.4 (backprop) or 55.5 MiB (predsim, with the sim heads).
        // A stage's workspace serves only its own convs (and their sim heads).
        let heldConvs = table.convLayers.indices.filter { held.contains(table.convLayers[$0].index) }
        let geometries = heldConvs.map { table.convGeometries[$0] }
        let simGeometries = table.simGeometries.isEmpty ? [] : heldConvs.map { table.simGeometries[$0] }
        let workspace = geometries.first.map {
            ConvWorkspace($0, alsoServing: Array(geometries.dropFirst()) + simGeometries, engine: table.engine, ledger: ledger)
        }
        assert(held != all || (workspace?.storage.byteCount ?? 0) == table.im2colWorkspaceBytes, "the shape table's conv workspace differs from the network's")
        convWorkspace = workspace
        // Blocks outside `held` are drawn (the generator walks the whole network) and dropped at once.
        convBlocks = table.convLayers.compactMap { l in
            let b = HiddenBlock(index: l.index, geometry: l.geometry!,
                                poolAfter: l.poolAfter, classes: spec.classes, dimInDecoder: spec.dimInDecoder, loss: spec.loss, beta: spec.beta,
                                nonlinearity: spec.nonlinearity, dropout: spec.dropout, rng: &rng, ledger: ledger,
                                sharedWorkspace: held.contains(l.index) ? workspace : nil, withHeads: withHeads,
                                dormant: !withHeads)
            return held.contains(l.index) ? b : nil
        }
        blocks = table.layers.filter { $0.kind == .linear }.compactMap { l in
            let b = HiddenBlock(index: l.index, inFeatures: l.inputCount, outFeatures: l.outputCount, classes: spec.classes,
                                loss: spec.loss, beta: spec.beta, nonlinearity: spec.nonlinearity,
                                dropout: spec.dropout, rng: &rng, ledger: ledger, withHeads: withHeads, dormant: !withHeads)
            return held.contains(l.index) ? b : nil
        }
        let convCount = table.convLayers.count
        convOffset = min(held.lowerBound, convCount)
        linearOffset = max(0, held.lowerBound - convCount)
        let inFeatures = table.outputLayer.inputCount
        output = OutputLayer(index: spec.hiddenBlockCount, inFeatures: inFeatures, classes: spec.classes,
                             zeroWeights: spec.loss.isLocal, rng: &rng, ledger: ledger)
        if schedule == .greedy {
            // nothing trains before the first round
        } else if spec.loss.isLocal {
            for b in convBlocks { b.optimizer = Optimizer(b.localParameters, settings: settings, ledger: ledger) }
            for b in blocks { b.optimizer = Optimizer(b.localParameters, settings: settings, ledger: ledger) }
            if holdsOutput { output.optimizer = Optimizer(output.parameters, settings: settings, ledger: ledger) }
        } else {
            globalOptimizer = Optimizer(convBlocks.flatMap(\.parameters) + blocks.flatMap(\.parameters) + output.parameters,
                                        settings: settings, ledger: ledger)
        }
    }

    /// Every optimizer, in a fixed order (blocks, then output; or the single global one).
    public var optimizers: [Optimizer] {
        if let globalOptimizer { return [globalOptimizer] }
        return convBlocks.compactMap(\.optimizer) + blocks.compactMap(\.optimizer) + [output.optimizer].compactMap { $0 }
    }

    /// All trainable parameters including heads.
    public var allParameters: [Parameter] {
        convBlocks.flatMap(\.localParameters) + blocks.flatMap(\.localParameters) + output.parameters
    }

    /// Hidden blocks of every kind (conv, then Linear) in the model (a stage's network holds
    /// `heldBlocks` of them).
    public var hiddenBlockCount: Int { spec.hiddenBlockCount }

    /// Whether this network holds every block (not one pipeline stage's).
    public var holdsAllBlocks: Bool { heldBlocks == 0..<hiddenBlockCount }

    /// Whether this network trains the output layer: it holds the last block.
    public var holdsOutput: Bool { heldBlocks.upperBound == hiddenBlockCount }

    /// Hidden block `k` (of the model), a conv or a Linear block, which this network must hold.
    func hiddenBlock(_ k: Int) -> (conv: HiddenBlock<ConvMap>?, linear: HiddenBlock<LinearMap>?) {
        precondition(heldBlocks.contains(k), "block \(k) is not held by this network (it holds \(heldBlocks))")
        let convCount = table.convLayers.count
        return k < convCount ? (convBlocks[k - convOffset], nil) : (nil, blocks[k - convCount - linearOffset])
    }

    public func dropoutSeed(step: Int, layer: Int) -> UInt64 {
        Xoshiro256.derive(seed, 0xD209, UInt64(step), UInt64(layer))
    }

    /// One training step on a batch. `images` (B, C, H, W) and `labels` (B).
    /// Local mode: each block trains itself in turn and hands on only dropout(h).
    /// Backprop mode: forward keeping activations, output loss, backward through all, one step.
    ///
    /// Lifetimes are explicit (optionals set to nil, scopes ending at a last use) so that debug
    /// and release builds book and free the same bytes in the same order: block k's input
    /// hand-off is freed as soon as block k returns; nothing of the step outlives it.
    public func trainStep(images: Tensor, labels: UnsafePointer<Int32>, lr: Float, step: Int) -> StepStats {
        precondition(holdsAllBlocks, "a stage's network trains through trainStage")
        if schedule == .greedy { return greedyStep(images: images, labels: labels, lr: lr, step: step) }
        if spec.loss.isLocal {
            // Every block, then the output layer: one stage holding the whole network.
            return trainStage(images, labels: labels, lr: lr, step: step, blocks: 0..<hiddenBlockCount, trainsOutput: true).stats
        } else {
            var x: Tensor? = images
            for b in convBlocks { x = b.forwardBackprop(x!, dropoutSeed: dropoutSeed(step: step, layer: b.index)) }
            for b in blocks { x = b.forwardBackprop(x!, dropoutSeed: dropoutSeed(step: step, layer: b.index)) }
            var grad: Tensor?
            var outputLoss: Float = 0, correct = 0
            do {
                let r = StepProfiler.measure(.outputLayer, layer: StepProfiler.outputLayer) {
                    output.train(x!, labels: labels, scale: 1, wantInputGrad: true)
                }
                outputLoss = r.loss
                correct = r.correct
                grad = r.inputGrad
            }
            x = nil  // the last hand-off: the output layer's backward is done with it
            for b in blocks.reversed() {
                grad = b.backwardBackprop(grad!, wantInputGrad: b.index > 0)  // frees the incoming gradient
            }
            for b in convBlocks.reversed() {
                grad = b.backwardBackprop(grad!, wantInputGrad: b.index > 0)
            }
            ledger.enter(.update, layer: nil, label: "update")
            StepProfiler.measure(.update, layer: StepProfiler.outputLayer) { globalOptimizer!.step(lr: lr) }
            for p in allParameters { p.dropGrad() }
            ledger.enter(.idle)
            return StepStats(outputLoss: outputLoss, correct: correct, blocks: [])
        }
    }

    /// Inference on a batch: returns the number of correct predictions. Heads are not run.
    public func evaluate(images: Tensor, labels: UnsafePointer<Int32>) -> Int {
        precondition(holdsAllBlocks, "a stage's network evaluates through evaluateStage")
        var x = images
        for b in convBlocks { x = b.forwardEval(x) }
        for b in blocks { x = b.forwardEval(x) }
        let logits = output.logits(x, phase: .evaluate)
        var correct = 0
        for r in 0..<logits.rowCount where CrossEntropy.argmax(logits, row: r) == Int(labels[r]) { correct += 1 }
        ledger.enter(.idle)
        return correct
    }
}
