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
    /// Conv blocks (VGG family), in order, before the Linear blocks; empty for the mlp.
    public let convBlocks: [HiddenBlock<ConvMap>]
    /// The conv scratch every conv block and sim head uses a view of (nil for the mlp).
    public let convWorkspace: ConvWorkspace?
    /// Hidden Linear blocks: the mlp's blocks, or the VGG's classifier block.
    public let blocks: [HiddenBlock<LinearMap>]
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
    /// Simultaneous (the paper's) or greedy, block by block (see `beginRound`).
    public let schedule: TrainingSchedule
    /// Greedy schedule: the block that trains now (nil before `beginRound`, and always under
    /// the simultaneous schedule).
    public internal(set) var round: Int?
    let optimizerSettings: OptimizerSettings

    /// - Parameters:
    ///   - engine: which code runs the convolutions (`ConvEngine.default` reads the environment).
    ///   - schedule: `.greedy` (a local loss only) builds no heads and no optimizers: each
    ///     block gets them when its round starts (`beginRound`), its heads drawn from a generator
    ///     of (seed, block). So with the same seed the greedy network's initial heads differ from
    ///     the simultaneous one's, and so do the weights of every block after the first and of the
    ///     output layer (the shared generator draws no head tensors between them).
    public init(spec: ModelSpec, seed: UInt64, optimizer settings: OptimizerSettings = OptimizerSettings(), ledger: Ledger = .shared,
                engine: ConvEngine = .default, schedule: TrainingSchedule = .simultaneous) {
        precondition(schedule == .simultaneous || spec.loss.isLocal, "the greedy schedule needs a local loss")
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
        let geometries = table.convGeometries
        let workspace = geometries.first.map {
            ConvWorkspace($0, alsoServing: Array(geometries.dropFirst()) + table.simGeometries, engine: table.engine, ledger: ledger)
        }
        assert((workspace?.storage.byteCount ?? 0) == table.im2colWorkspaceBytes, "the shape table's conv workspace differs from the network's")
        convWorkspace = workspace
        convBlocks = table.convLayers.map { l in
            HiddenBlock(index: l.index, geometry: l.geometry!,
                        poolAfter: l.poolAfter, classes: spec.classes, dimInDecoder: spec.dimInDecoder, loss: spec.loss, beta: spec.beta,
                        nonlinearity: spec.nonlinearity, dropout: spec.dropout, rng: &rng, ledger: ledger, sharedWorkspace: workspace,
                        withHeads: withHeads)
        }
        blocks = table.layers.filter { $0.kind == .linear }.map { l in
            HiddenBlock(index: l.index, inFeatures: l.inputCount, outFeatures: l.outputCount, classes: spec.classes,
                        loss: spec.loss, beta: spec.beta, nonlinearity: spec.nonlinearity,
                        dropout: spec.dropout, rng: &rng, ledger: ledger, withHeads: withHeads)
        }
        let inFeatures = table.outputLayer.inputCount
        output = OutputLayer(index: convBlocks.count + blocks.count, inFeatures: inFeatures, classes: spec.classes,
                             zeroWeights: spec.loss.isLocal, rng: &rng, ledger: ledger)
        if schedule == .greedy {
            // nothing trains before the first round
        } else if spec.loss.isLocal {
            for b in convBlocks { b.optimizer = Optimizer(b.localParameters, settings: settings, ledger: ledger) }
            for b in blocks { b.optimizer = Optimizer(b.localParameters, settings: settings, ledger: ledger) }
            output.optimizer = Optimizer(output.parameters, settings: settings, ledger: ledger)
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

    /// Hidden blocks of every kind (conv, then Linear).
    public var hiddenBlockCount: Int { convBlocks.count + blocks.count }

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
        if schedule == .greedy { return greedyStep(images: images, labels: labels, lr: lr, step: step) }
        let w = spec.loss.weights(beta: spec.beta)
        if spec.loss.isLocal {
            var x: Tensor? = images
            var blockStats: [BlockStepStats] = []
            blockStats.reserveCapacity(hiddenBlockCount)
            if let chunk = chunkSize, chunk < images.rowCount {
                // Chunked conv blocks hand on through `ChunkedHandOff`: a block whose hand-off is
                // cheap to recompute (vgg8b's first) keeps the recipe, not the tensor, when the
                // next block is a conv block that reads it a chunk at a time.
                var source: ChunkedHandOff? = .tensor(images)
                for (i, b) in convBlocks.enumerated() {
                    let recompute = i + 1 < convBlocks.count && b.handOffIsCheapToRecompute
                    let r = b.trainLocalChunked(source!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index),
                                                chunk: chunk, recomputeHandOff: recompute)
                    source = r.handOff  // releases block k's input hand-off
                    blockStats.append(r.stats)
                }
                x = source!.tensor
                source = nil
            } else {
                for b in convBlocks {
                    let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index), chunk: chunkSize)
                    x = r.handOff
                    blockStats.append(r.stats)
                }
            }
            for b in blocks {
                let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index), chunk: chunkSize)
                x = r.handOff  // releases block k's input hand-off
                blockStats.append(r.stats)
            }
            let r = StepProfiler.measure(.outputLayer, layer: StepProfiler.outputLayer) {
                output.train(x!, labels: labels, scale: w.output, wantInputGrad: false)
            }
            x = nil  // the last hand-off
            ledger.enter(.update, layer: output.index, label: "update")
            StepProfiler.measure(.update, layer: StepProfiler.outputLayer) { output.optimizer!.step(lr: lr) }
            for p in output.parameters { p.dropGrad() }
            ledger.enter(.idle)
            return StepStats(outputLoss: r.loss, correct: r.correct, blocks: blockStats)
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
