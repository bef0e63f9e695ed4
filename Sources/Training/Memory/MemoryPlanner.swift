import Layers
import Tensors
import MemoryLedger
import Reports

/// One layer of a plan: its parameters and what a step of it needs.
public struct LayerPlan: Equatable, Sendable, Codable {
    public var index: Int
    /// "conv 1->128 28x28, pool", "linear 1024", "output 10".
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
    /// Micro-batch of a chunked local step (nil: whole batches).
    public var chunk: Int?
    /// Greedy schedule: the round (0-based) this plan is of, and how many there are (nil: the
    /// simultaneous schedule, or backprop).
    public var round: Int?
    public var rounds: Int?
    /// Greedy schedule: the round reads its prefix's output from a hand-off cache (nil: it
    /// runs the prefix, or is not a greedy round).
    public var cached: Bool?
    /// "local" or "backprop".
    public var mode: String { loss.isLocal ? "local" : "backprop" }
    /// Bytes that live for the whole run: weights, head weights, optimizer state, conv scratch, the input batch.
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

/// Predicts a training step's ledger figures from the model's shape table, batch size, chunk,
/// mode, optimizer and conv engine, before anything is allocated. Exact for the ledger's
/// categories: the tests (Tests/TrainingTests/MemoryProof*.swift, ShapeTablePlanTests.swift)
/// check every prediction against a measured step, for the mlp and the conv nets, whole and
/// chunked, local and backprop, under both conv engines.
///
/// The prediction replays `ShapeTable.stepProgram`: what the network books and frees, in its
/// order, generated from the same table the network is built from. So the maximum over the step
/// is exact whatever layer or instant it falls on.
///
/// **The working set W_k** of hidden block k in local mode is the highest number of live bytes
/// of the transient categories (activations, activationGrads, lossTemp, gradients, workspace)
/// above those live when the step begins (the conv scratch), at any instant of block k's local
/// step: from its forward marker until the step has returned and the caller has dropped the
/// block's input. It includes the input hand-off (block k-1's dropout(h), B x in_k floats,
/// live for the whole step; block 0's input is the batch, booked as `input` and counted with
/// the persistent bytes instead). For the output layer W is defined the same way. Because a
/// block frees everything but its hand-off, nothing transient but the hand-off crosses from one
/// block's step to the next, and
///
///     local peak    = weights + head weights + optimizer state + conv scratch + input batch + max_k W_k
///     backprop peak = weights + optimizer state + conv scratch + input batch + max over the step of
///                     (saved activations of the blocks not yet back-propagated
///                      + gradients of the parameters already reached + the block's temporaries)
///
/// Greedy schedule, round k (`plan(_:batchSize:chunk:optimizer:round:)`): only block k has heads and
/// optimizer state (and the output layer its optimizer in the last round), the blocks before it
/// are `frozenWeights`, and the step is the frozen prefix's forward, then block k's local step:
///
///     greedy peak (round k) = weights + frozen weights + block k's heads and optimizer state
///                             + conv scratch + input batch + max over the step of (the prefix's
///                             output, or one chunk of it recomputed, + block k's working set)
///
/// and the greedy run's peak is its largest round (`greedyPeakPlan`).
///
/// For a Linear block (B batch, n inputs, F units, K classes, 4-byte floats) the local step
/// usually peaks when the Linear weight gradient is booked in the backward (x-hat and invStd
/// are already freed there):
///     W_k = 4 [ B n (hand-off in, k >= 1) + 2 B F (h, dh)
///               + head gradients (pred: K F + K; sim: F F; pred-bpf: 128 F + 128)
///               + 2 F (BN gradients) + F n + F (Linear gradients) ]
/// e.g. mlp 3x1024, predsim, batch 128, block 1: 10,014,760 bytes.
public enum MemoryPlanner {
    /// The plan for `spec` in its own mode (local for a local loss, backprop for `.backprop`),
    /// whole batches or micro-batches of `chunk` (local mode), under `engine`'s conv scratch.
    public static func plan(_ spec: ModelSpec, batchSize: Int, chunk: Int? = nil, optimizer: OptimizerSettings = OptimizerSettings(),
                            engine: ConvEngine = .default) -> MemoryPlan {
        plan(ShapeTable(spec: spec, engine: engine), batchSize: batchSize, chunk: chunk, optimizer: optimizer)
    }

    /// The plan from a compiled table; with `round`, of that round of the greedy schedule
    /// (`cached`: the round reads its prefix's output from a hand-off cache); with `stage`, of
    /// the pipeline stage holding those blocks (`ShapeTable.stageStepProgram`, `inFlight`
    /// hand-offs in its send ring).
    public static func plan(_ table: ShapeTable, batchSize: Int, chunk: Int? = nil, optimizer: OptimizerSettings = OptimizerSettings(),
                            round: Int? = nil, cached: Bool = false, stage: Range<Int>? = nil, inFlight: Int = 1) -> MemoryPlan {
        let spec = table.spec
        let program = round.map { table.greedyStepProgram(round: $0, batch: batchSize, chunk: chunk, optimizer: optimizer, cached: cached) }
            ?? stage.map { table.stageStepProgram(blocks: $0, batch: batchSize, chunk: chunk, optimizer: optimizer, inFlight: inFlight) }
            ?? table.stepProgram(batch: batchSize, chunk: chunk, optimizer: optimizer)
        var replay = AllocationReplay()
        var persistent = CategoryBytes()
        var windows: [Int: Int] = [:]
        var window: Int?
        for event in program.events {
            switch event {
            case .allocate(let name, let category, _, let bytes): replay.allocate(name, category, bytes: bytes)
            case .free(let name): replay.free(name)
            case .stepBegins:
                persistent = replay.live
                replay.beginStep()
            case .layerBegins(let k):
                if let w = window { windows[w] = max(windows[w] ?? 0, replay.windowPeak) }
                window = k
                replay.beginWindow()
            }
        }
        if let w = window { windows[w] = max(windows[w] ?? 0, replay.windowPeak) }
        precondition(replay.transient == replay.baseline, "planner: a step left transient bytes behind")
        let f = MemoryLayout<Float>.stride
        let holdsOutput = stage.map { $0.upperBound == table.hiddenLayers.count } ?? true
        let heldLayers = table.layers.filter { l in stage.map { $0.contains(l.index) || (l.kind == .output && holdsOutput) } ?? true }
        let layers = heldLayers.map { l -> LayerPlan in
            // Greedy: only round k's block has heads and optimizer state (and the output layer
            // has its optimizer in the last round).
            let trains = round.map { l.index == $0 || (l.kind == .output && $0 == table.greedyRounds - 1) } ?? true
            let hasHeads = spec.loss.isLocal && (round.map { l.index == $0 } ?? true)
            let heads = hasHeads ? l.trainedHeadParams : 0
            return LayerPlan(index: l.index, name: l.name, params: l.params, headParams: heads,
                             headElements: hasHeads ? l.headElements : 0,
                             optimizerStateBytes: trains ? table.optimizerStateBytes(l, optimizer: optimizer) : 0,
                             workingSetBytes: spec.loss.isLocal ? windows[l.index] : nil,
                             handOffBytes: l.kind == .output ? 0 : batchSize * l.handOffCount * f)
        }
        return MemoryPlan(loss: spec.loss, batchSize: batchSize, chunk: program.chunk,
                          round: round, rounds: round == nil ? nil : table.greedyRounds, cached: cached ? true : nil,
                          persistent: persistent, layers: layers,
                          peak: replay.peak, peakBreakdown: replay.peakBreakdown)
    }

    /// The plan of every stage of `placement` (`Network(holding:)` per stage), in order.
    public static func stagePlans(_ table: ShapeTable, placement: StagePlacement, batchSize: Int, chunk: Int? = nil,
                                  optimizer: OptimizerSettings = OptimizerSettings(), inFlight: Int = 1) -> [MemoryPlan] {
        placement.blocks.map { plan(table, batchSize: batchSize, chunk: chunk, optimizer: optimizer, stage: $0, inFlight: inFlight) }
    }

    /// The plan of every round of the greedy schedule, in order.
    public static func greedyPlans(_ table: ShapeTable, batchSize: Int, chunk: Int? = nil,
                                   optimizer: OptimizerSettings = OptimizerSettings()) -> [MemoryPlan] {
        (0..<table.greedyRounds).map { plan(table, batchSize: batchSize, chunk: chunk, optimizer: optimizer, round: $0) }
    }

    /// The greedy schedule's peak: the plan of its largest round (the first of equals).
    public static func greedyPeakPlan(_ table: ShapeTable, batchSize: Int, chunk: Int? = nil,
                                      optimizer: OptimizerSettings = OptimizerSettings()) -> MemoryPlan {
        greedyPlans(table, batchSize: batchSize, chunk: chunk, optimizer: optimizer).max { $0.peak < $1.peak }!
    }

    /// Plans for every training signal of the same model and batch, ordered from the smallest
    /// predicted peak: which mode needs less, and which fit a budget.
    public static func alternatives(_ spec: ModelSpec, batchSize: Int, chunk: Int? = nil, optimizer: OptimizerSettings = OptimizerSettings(),
                                    engine: ConvEngine = .default) -> [MemoryPlan] {
        LossKind.allCases.map { loss -> MemoryPlan in
            var s = spec
            s.loss = loss
            return plan(s, batchSize: batchSize, chunk: chunk, optimizer: optimizer, engine: engine)
        }.sorted { $0.peak < $1.peak }
    }
}
