import ArgumentParser
import Layers
import Shards
import MemoryLedger
import Reports
import Tensors
import Training
import MessagePassing
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model locally (each block from its own loss) or by backprop, into a run folder.",
        discussion: """
        Defaults give the paper's Fashion-MNIST MLP recipe: mlp 3x1024, predsim (beta 0.99), Adam \
        lr 5e-4, batch 128, 200 epochs, milestones 100,150,175,188 (x0.25), dropout 0.025, \
        LeakyReLU for sim/predsim and ReLU otherwise. The data decides the rest: batches are \
        normalised with the training split's per-channel statistics (--normalize) and augmented \
        with the dataset's --augment-hint, else a random crop (--augment). The Fashion-MNIST \
        recipe of the paper adds the flip: --augment crop,flip. Both splits are checked against \
        the model before the first step; the first line printed says what was chosen.
        """)

    @Option(help: "Dataset folder made by `layerwise shards convert`.")
    var data: String = "data/fashion-mnist"
    @Option(help: "The split to train on.")
    var trainSplit: String = "train"
    @Option(help: "The split evaluated after every epoch, or none.")
    var testSplit: String = "test"
    @Option(name: .customLong("run"), help: "Run folder for config.json, metrics.jsonl and checkpoints.")
    var runFolder: String = "runs/mlp"
    @Flag(help: "Continue the run in --run from its last checkpoint.")
    var resume = false

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customLong("loss"), .customLong("loss-sup")],
            help: "pred, sim, predsim, pred-bpf, sim-bpf, predsim-bpf or backprop.")
    var loss: String = "predsim"
    @Option(help: "Weight of the sim term (default 0.99; 0.01 for predsim-bpf).")
    var beta: Float?
    @Option(help: "relu or leakyrelu (default: leakyrelu for sim and predsim, relu otherwise).")
    var nonlin: String?

    @Option(help: "Epochs to train.")
    var epochs: Int = 200
    @Option(help: "Batch size.")
    var batchSize: Int = 128
    @Option(help: "Learning rate.")
    var lr: Float = 5e-4
    @Option(help: "Comma-separated epochs where the learning rate is multiplied by --lr-decay.")
    var milestones: String = "100,150,175,188"
    @Option(help: "Learning-rate factor at each milestone.")
    var lrDecay: Float = 0.25
    @Option(help: "adam or sgd (with --momentum).")
    var optim: String = "adam"
    @Option(help: ArgumentHelp("How optimizer moments are stored: fp32, bf16 (stochastic rounding) or int8 (block-wise 8-bit codes, an fp32 scale per 256 values).",
                               valueName: "format"))
    var optimizerState: OptimizerStateFormat = .fp32
    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9
    @Option(help: "Weight decay.")
    var weightDecay: Float = 0
    @Option(help: "Seed of initialisation, shuffling, augmentation and dropout.")
    var seed: UInt64 = 1
    @Option(help: ArgumentHelp("none, crop (a random crop, padding from the image size) or crop,flip (plus a horizontal flip: for data without a handedness, not digits or text). Default: the dataset's --augment-hint, else crop; a resumed run keeps its own.",
                               valueName: "recipe"))
    var augment: AugmentRecipe?
    @Flag(help: "Same as --augment none.")
    var noAugment = false
    @Option(help: ArgumentHelp("dataset (the training split's per-channel mean and std from the manifest, applied to every split), none, or MEAN,STD (one value for all channels, or MEAN1,MEAN2,MEAN3,STD1,STD2,STD3). Default: dataset; a resumed run keeps its own.",
                               valueName: "how"))
    var normalize: String?

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?
    @Option(help: "Loader decode threads.")
    var loaderThreads: Int = 1
    @Option(help: ArgumentHelp("Local mode: compute each block's local step in chunks of N examples with recomputation (same numbers, activation memory of one chunk plus the block's input and hand-off; costs time).",
                               valueName: "N"))
    var chunk: Int?
    @Option(help: ArgumentHelp("Local mode, whole batches: keep (the conv sim heads hold their output for the backward: one sim-head conv forward less a step, more activation memory) or recompute (the default: each chunk of the output is computed again). The same numbers either way; --chunk always recomputes. With --memory-budget and no choice, the planner keeps it when that fits.",
                               valueName: "keep|recompute"))
    var simOutput: SimOutput?
    @Option(help: ArgumentHelp("simultaneous (the paper's: every block trains on every batch) or greedy (block by block: in round k only block k trains, with its heads and optimizer; the blocks before it are frozen and run forward only; the output layer trains in the last round).",
                               valueName: "schedule"))
    var schedule: String = "simultaneous"
    @Option(help: ArgumentHelp("Greedy schedule: epochs of every round (default: --epochs / blocks, the remainder to the last rounds). The milestones are fractions of --epochs, applied to each round scaled to its length.",
                               valueName: "E"))
    var epochsPerBlock: Int?
    @Option(help: ArgumentHelp("Greedy schedule: when a round ends, write the frozen prefix's output (the hand-off into the next block, before dropout) for every training record once as a shard dataset in DIR/round-<k>, and train the next round on it instead of running the prefix (needs --augment none; one cache on disk at a time).",
                               valueName: "dir"))
    var cacheHandoffs: String?
    @Option(help: ArgumentHelp("How hand-off caches store values: fp32 (bit for bit what the prefix computes) or bf16 (round to nearest even, half the disk).",
                               valueName: "precision"))
    var cachePrecision: HandOffCacheInfo.Precision?
    @Option(help: ArgumentHelp("Greedy schedule with --cache-handoffs: the largest cache the planner may put on disk; rounds whose cache would not fit recompute their prefix.",
                               valueName: "size"))
    var diskBudget: String?
    @Option(help: "Use at most this many training records per epoch.")
    var trainLimit: Int?
    @Option(help: "Evaluate on at most this many test records.")
    var testLimit: Int?
    @Option(help: "Checkpoint every N steps inside an epoch (0: only at epoch ends).")
    var checkpointEvery: Int = 100
    @Option(help: ArgumentHelp("Refuse to start if the planner's predicted ledger peak exceeds this size (256MiB, 1.5GiB, 300MB; auto: the cgroup limit, else 80% of MemAvailable).",
                               valueName: "size"))
    var memoryBudget: String?
    @Flag(help: "With --memory-budget: the planner may store the optimizer's moments in bf16 or 8 bits (--optimizer-state) when that fits with fewer FLOPs than chunking.")
    var allowLeanState = false
    @Option(help: ArgumentHelp("Write memory reports (summary.txt, memory.json, memory.html, trace.json) of the first \(Trainer.memoryReportSteps) training steps into this folder.",
                               valueName: "dir"))
    var memoryReport: String?
    @Option(help: ArgumentHelp("Pipeline the hidden blocks over S processes started by `mpirun -np S` (local losses, simultaneous schedule): each trains consecutive blocks (placed by the planner so that the largest stage's predicted ledger peak is smallest; with --memory-budget, per stage) on the hand-off of the one before; the first reads the data, the last trains the output layer and writes the run folder (on a file system every process sees). The same weights as one process. auto: as many stages as mpirun started. Needs a build with MPI (swift build --traits MPI).",
                               valueName: "S|auto"))
    var stages: String = "1"
    @Option(help: ArgumentHelp("With --stages: hand-offs a stage may still be sending while it computes its next batch (0: it waits until the next stage has received each one; the plan books N hand-offs per stage).", valueName: "N"))
    var inFlight: Int = 1
    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        if simOutput == .keep, let chunk { throw ValidationError("--sim-output keep holds each sim head's output whole; --chunk \(chunk) recomputes it chunk by chunk: give one of them") }
        guard LossKind(rawValue: loss) != nil else {
            throw ValidationError("--loss \(loss) is not one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let nonlin, Nonlinearity(rawValue: nonlin) == nil { throw ValidationError("--nonlin must be relu or leakyrelu") }
        guard OptimizerKind(rawValue: optim) != nil else { throw ValidationError("--optim must be adam or sgd") }
        if allowLeanState && memoryBudget == nil { throw ValidationError("--allow-lean-state lets the --memory-budget planner choose the optimizer state; give --memory-budget (or choose with --optimizer-state)") }
        if let memoryBudget, MemoryBudget.resolve(memoryBudget) == nil {
            throw ValidationError("--memory-budget \(memoryBudget) is not a size like 256MiB, 1.5GiB or 300MB, or auto (the cgroup limit, else \(Int(MemoryBudget.availableFraction * 100))% of MemAvailable)")
        }
        guard parsedMilestones != nil else { throw ValidationError("--milestones must be comma-separated epochs, e.g. 100,150") }
        if noAugment && augment != nil && augment != AugmentRecipe.none { throw ValidationError("--no-augment and --augment \(augment!.rawValue) disagree; give one") }
        if let normalize, normalize != "dataset", normalize != "none", parsedNormalization == nil {
            throw ValidationError("--normalize \(normalize) is not dataset, none or MEAN,STD (an even number of numbers, std positive), e.g. 0.5,0.25")
        }
        guard TrainingSchedule(rawValue: schedule) != nil else { throw ValidationError("--schedule must be simultaneous or greedy") }
        if let diskBudget, ByteCount.parse(diskBudget) == nil { throw ValidationError("--disk-budget \(diskBudget) is not a size like 20GiB or 500MB") }
        guard stages == "auto" || (Int(stages) ?? 0) >= 1 else { throw ValidationError("--stages must be at least 1, or auto (got \(stages))") }
        if inFlight < 0 { throw ValidationError("--in-flight must not be negative (got \(inFlight))") }
        if trainSplit.isEmpty || testSplit.isEmpty { throw ValidationError("--train-split and --test-split need a split name (or --test-split none)") }
    }

    var parsedMilestones: [Int]? {
        if milestones.isEmpty { return [] }
        let parts = milestones.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(where: { $0 == nil }) ? nil : parts.map { $0! }
    }

    /// `MEAN,STD` or `M1,...,Mc,S1,...,Sc`.
    var parsedNormalization: (mean: [Float], std: [Float])? {
        guard let normalize else { return nil }
        let values = normalize.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count >= 2, values.count % 2 == 0, values.allSatisfy({ $0 != nil && $0!.isFinite }) else { return nil }
        let numbers = values.map { $0! }
        let half = numbers.count / 2
        guard numbers[half...].allSatisfy({ $0 > 0 }) else { return nil }
        return (Array(numbers[..<half]), Array(numbers[half...]))
    }

    func makeConfig() -> TrainingConfig {
        var c = TrainingConfig()
        c.data = data
        c.run = runFolder
        let kind = LossKind(rawValue: loss)!
        c.model = modelOptions.spec(loss: kind)
        if let beta { c.model.beta = beta }
        if let nonlin { c.model.nonlinearity = Nonlinearity(rawValue: nonlin)! }
        c.epochs = epochs
        c.batchSize = batchSize
        c.lr = lr
        c.milestones = parsedMilestones ?? []
        c.lrDecay = lrDecay
        c.optimizer.kind = OptimizerKind(rawValue: optim)!
        c.optimizer.stateFormat = optimizerState
        c.optimizer.momentum = momentum
        c.optimizer.weightDecay = weightDecay
        c.seed = seed
        c.trainSplit = trainSplit
        c.testSplit = testSplit == "none" ? nil : testSplit
        c.augment = noAugment ? AugmentRecipe.none : augment  // nil: the trainer decides (hint, crop, or the resumed run's)
        switch normalize {
        case nil: break  // the trainer decides (the training split's statistics, or the resumed run's)
        case "dataset": c.normalize = "dataset"
        case "none": (c.mean, c.std, c.normalize) = ([0], [1], "none")
        default: (c.mean, c.std, c.normalize) = (parsedNormalization!.mean, parsedNormalization!.std, "given")
        }
        c.threads = threads
        c.loaderThreads = loaderThreads
        c.trainLimit = trainLimit
        c.testLimit = testLimit
        c.checkpointEvery = checkpointEvery
        if let budget = memoryBudget.flatMap({ MemoryBudget.resolve($0) }) {
            c.memoryBudget = budget.bytes
            c.allowLeanState = allowLeanState ? true : nil
            if budget.source != "given" { print("memory budget: \(ByteFormat.human(budget.bytes)), \(budget.source)") }
        }
        c.memoryReport = memoryReport
        c.chunk = chunk
        c.simOutput = simOutput
        c.schedule = schedule == TrainingSchedule.greedy.rawValue ? .greedy : nil  // nil: the paper's, as older runs recorded it
        c.epochsPerBlock = epochsPerBlock
        c.cacheHandOffs = cacheHandoffs
        c.cachePrecision = cachePrecision
        c.diskBudget = diskBudget.flatMap { ByteCount.parse($0) }
        c.stages = Int(stages).flatMap { $0 == 1 ? nil : $0 }
        return c
    }

    func run() throws {
        var config = makeConfig()
        let auto = stages == "auto"
        guard auto || config.stages != nil else { return try train(config) }
        // Refusals that need no other process come first, the same on every process.
        try config.validate()
        if auto && !config.model.loss.isLocal { throw TrainingError.invalidConfig("--stages needs a local loss: backprop sends gradients back through every block, so its blocks cannot run as a pipeline") }
        let link = try MPIRuntime.start(stages: config.stages, batchSize: config.batchSize, blocks: config.model.hiddenBlockCount, inFlight: inFlight)
        if auto {
            config.stages = link.stageCount
            try config.validate()
        }
        do {
            try train(config, link: link)
        } catch {
            // One stage failing stops the others (they would wait for it forever).
            FileHandle.standardError.write(Data("Error: stage \(link.stage + 1) of \(link.stageCount): \(error)\n".utf8))
            MPIRuntime.abort(code: 1)
            throw error
        }
        MPIRuntime.finish()
    }

    private func train(_ config: TrainingConfig, link: StageLink? = nil) throws {
        let last = link.map { $0.stage == $0.stageCount - 1 } ?? true
        let trainer = try Trainer(config: config, resume: resume, showProgress: !quiet, link: link)
        guard last else {
            try trainer.run()
            return
        }
        print("\(trainer.network.spec.description); \(trainer.network.spec.parameterCount) parameters (+\(trainer.network.spec.headParameterCount) in local heads)")
        if resume {
            let s = trainer.state
            print("resuming \(trainer.runFolder.path) at epoch \(s.cursor.epoch + 1), record \(s.cursor.recordsConsumed) of the epoch (step \(s.globalStep))")
        }
        try trainer.run()
    }
}
