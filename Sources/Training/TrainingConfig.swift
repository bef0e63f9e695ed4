import Layers
import Foundation
import Shards

/// Everything a training run needs, as written to the run folder's `config.json`.
/// Defaults give the paper's Fashion-MNIST MLP recipe (DESIGN.md section 2).
public struct TrainingConfig: Codable, Sendable, Equatable {
    /// Dataset folder (shards + manifest.json).
    public var data: String = "data/fashion-mnist"
    /// The split trained on.
    public var trainSplit: String = "train"
    /// The split evaluated after every epoch; nil: none (`--test-split none`).
    public var testSplit: String? = "test"
    /// Run folder (config, metrics, checkpoints).
    public var run: String = "runs/mlp"
    /// The model and its loss; input shape and class count are taken from the data.
    public var model = ModelSpec()
    /// Adam or SGD, momentum and weight decay: one optimizer per block and one for the output layer.
    public var optimizer = OptimizerSettings()
    /// Epochs to train in all (a resumed run continues up to this many).
    public var epochs: Int = 200
    /// Examples per training step (and per evaluation batch).
    public var batchSize: Int = 128
    /// The learning rate before any milestone.
    public var lr: Float = 5e-4
    /// Epochs after which the learning rate is multiplied by `lrDecay`.
    public var milestones: [Int] = [100, 150, 175, 188]
    /// Factor applied to the learning rate at each of `milestones`.
    public var lrDecay: Float = 0.25
    /// Seeds every random draw: initialisation, shuffling, augmentation and dropout.
    public var seed: UInt64 = 1
    /// BLAS threads (nil: all cores).
    public var threads: Int?
    /// Augmentation of training batches. nil: not chosen; the trainer resolves it before the
    /// first step (the saved run's when resuming, else the dataset's `augmentHint`, else crop)
    /// and config.json records the result. Older config.json files hold `true` (crop and
    /// flip, what those runs did) or `false`.
    public var augment: AugmentRecipe?
    /// Normalisation in the [0, 1] pixel space, one value per channel (or one for all), applied
    /// to every split (training and evaluation alike). nil: not chosen; the trainer resolves
    /// it before the first step (the saved run's when resuming, else the training split's
    /// statistics) and config.json records the values used.
    public var mean: [Float]?
    /// The standard deviation per channel that goes with `mean`.
    public var std: [Float]?
    /// How `mean` and `std` were chosen: "dataset" (the training split's statistics from the
    /// manifest), "dataset-computed" (computed from the training split, the manifest had none),
    /// "none" (0 and 1) or "given". nil in runs started before this was recorded (they used
    /// Fashion-MNIST's 0.286 and 0.353, which their config.json holds).
    public var normalize: String?
    /// Train on at most this many records per epoch (nil: all), for short runs.
    public var trainLimit: Int?
    /// Evaluate on at most this many test records (nil: all).
    public var testLimit: Int?
    /// Write a checkpoint every this many steps inside an epoch (0: only at epoch ends).
    public var checkpointEvery: Int = 100
    /// Loader decode threads.
    public var loaderThreads: Int = 1
    /// Write the memory report here after the run (nil: none).
    public var memoryReport: String?
    /// Refuse to start when the planner's predicted ledger peak exceeds this many bytes (nil: no check).
    public var memoryBudget: Int?
    /// `--allow-lean-state`: under `memoryBudget` the planner may store the optimizer's moments
    /// in bf16 or 8 bits when that fits with fewer FLOPs than the format asked for (nil or
    /// false: never). Absent from older config.json files.
    public var allowLeanState: Bool?
    /// Local mode: compute each block's local step in micro-batches of this many examples with
    /// recomputation (`--chunk`): the same losses and updates as whole batches (to float
    /// rounding), activation memory of one chunk plus the block's input and hand-off.
    /// nil: whole batches. Backprop mode ignores it. Absent from older config.json files.
    public var chunk: Int?
    /// Local mode, whole batches: whether the conv sim heads keep their output for the
    /// backward or recompute it (`--sim-output`; nil: recompute, unless the `memoryBudget`
    /// planner chose to keep it, which it writes here). The same numbers either way. Absent
    /// from older config.json files.
    public var simOutput: SimOutput?
    /// When the blocks train: nil or `.simultaneous` (the paper's: every block on every batch)
    /// or `.greedy` (block by block, one round each; see `roundLengths(blocks:)`). Absent from
    /// older config.json files.
    public var schedule: TrainingSchedule?
    /// Greedy schedule: epochs of every round (nil: `epochs` split over the rounds).
    public var epochsPerBlock: Int?
    /// Greedy schedule: write each round's frozen-prefix output (the hand-off into the block
    /// that trains next) for every training record once, as a shard dataset in
    /// `<cacheHandOffs>/round-<k>`, and train round k on it instead of running the prefix
    /// (`--cache-handoffs DIR`). Needs `augment` none. nil: recompute the prefix every step.
    public var cacheHandOffs: String?
    /// How hand-off caches store their values (nil: fp32, bit for bit; bf16 halves the disk).
    public var cachePrecision: HandOffCacheInfo.Precision?
    /// Greedy schedule: the rounds (0-based) whose prefix is read from the cache; nil: every
    /// round after the first when `cacheHandOffs` is set. The memory planner fills it in
    /// under `--memory-budget` or `--disk-budget`.
    public var cachedRounds: [Int]?
    /// Greedy schedule: the chunk of each round, when the planner chose them per round (nil:
    /// `chunk` for every round).
    public var roundChunks: [Int?]?
    /// Largest hand-off cache on disk the planner may choose (`--disk-budget`; nil: no limit).
    public var diskBudget: Int?
    /// Pipeline stages (`--stages`): consecutive blocks per MPI rank, one rank per stage
    /// (nil or 1: one process). The same training either way, so a run may resume with
    /// another number of stages.
    public var stages: Int?

    /// The paper's Fashion-MNIST MLP recipe on `data/fashion-mnist`, run folder `runs/mlp`.
    public init() {}

    /// Learning rate for an epoch (0-based) under the milestone schedule.
    public func learningRate(epoch: Int) -> Float {
        var lr = self.lr
        for m in milestones where epoch >= m { lr *= lrDecay }
        return lr
    }
}

extension TrainingConfig {
    /// Checks flags before anything is allocated; messages name the flag.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError.invalidConfig(message) } }
        try require(epochs >= 0, "--epochs must not be negative (got \(epochs))")
        try require(batchSize > 0, "--batch-size must be positive (got \(batchSize))")
        try require(lr > 0 && lr.isFinite, "--lr must be a positive number (got \(lr))")
        try require(model.numLayers >= 1, "--num-layers must be at least 1 (got \(model.numLayers))")
        try require(model.numHidden >= 1, "--num-hidden must be at least 1 (got \(model.numHidden))")
        try require(model.dropout >= 0 && model.dropout < 1, "--dropout must be in [0, 1) (got \(model.dropout))")
        try require(model.beta >= 0 && model.beta <= 1, "--beta must be in [0, 1] (got \(model.beta))")
        try require(milestones == milestones.sorted(), "--milestones must be increasing (got \(milestones))")
        try require(checkpointEvery >= 0, "--checkpoint-every must not be negative")
        if let threads { try require(threads >= 1, "--threads must be at least 1 (got \(threads))") }
        if let trainLimit { try require(trainLimit > 0, "--train-limit must be positive") }
        if let chunk { try require(chunk > 0, "--chunk must be positive (got \(chunk))") }
        if let epochsPerBlock {
            try require(schedule == .greedy, "--epochs-per-block needs --schedule greedy")
            try require(epochsPerBlock > 0, "--epochs-per-block must be positive (got \(epochsPerBlock))")
        }
        try require(schedule != .greedy || model.loss.isLocal, "--schedule greedy needs a local loss (not backprop)")
        try require(cacheHandOffs == nil || schedule == .greedy, "--cache-handoffs needs --schedule greedy")
        try require(cachePrecision == nil || cacheHandOffs != nil, "--cache-precision needs --cache-handoffs DIR")
        try require(diskBudget == nil || cacheHandOffs != nil, "--disk-budget needs --cache-handoffs DIR (it limits the hand-off caches)")
        if let diskBudget { try require(diskBudget > 0, "--disk-budget must be positive") }
        if let stages {
            try require(stages >= 1, "--stages must be at least 1 (got \(stages))")
            if stages > 1 {
                try require(model.loss.isLocal, "--stages needs a local loss: backprop sends gradients back through every block, so its blocks cannot run as a pipeline")
                try require(schedule != .greedy, "--stages pipelines the simultaneous schedule; the greedy schedule trains one block at a time")
                try require(stages <= model.hiddenBlockCount, "--stages \(stages) is more than the model's \(model.hiddenBlockCount) hidden blocks (one stage holds at least one block)")
            }
        }
        try require((mean == nil) == (std == nil), "--normalize needs both a mean and a std")
        if let std { try require(!std.isEmpty && std.allSatisfy { $0 > 0 && $0.isFinite }, "--normalize: std values must be positive (got \(std))") }
        if let mean { try require(!mean.isEmpty && mean.allSatisfy { $0.isFinite }, "--normalize: mean values must be finite (got \(mean))") }
    }

    /// The parts of the configuration that a resumed run must share with the original
    /// (epochs may grow; threads, reporting and limits of evaluation may change).
    var resumeKey: String {
        var c = self
        c.epochs = 0
        c.run = ""
        c.memoryReport = nil
        c.memoryBudget = nil
        c.allowLeanState = nil
        c.chunk = nil  // the same numbers either way: a run may resume with another chunk size
        c.simOutput = nil  // the same bits either way
        c.roundChunks = nil
        // An fp32 cache gives the bits the prefix computes: a run may resume with or without
        // one, or in another folder. bf16 changes the numbers, so it stays in the key.
        c.cacheHandOffs = nil
        c.cachedRounds = nil
        c.diskBudget = nil
        if c.cachePrecision == .fp32 { c.cachePrecision = nil }
        c.testLimit = nil
        c.threads = nil
        c.stages = nil  // the same numbers in one process or in stages
        c.loaderThreads = 0
        c.checkpointEvery = 0
        // Loading converts optimizer state between formats, so a run may resume with another
        // one; resumed with its own (the same flags), it continues bit for bit.
        c.optimizer.stateFormat = .fp32
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? String(decoding: encoder.encode(c), as: UTF8.self)) ?? ""
    }
}
