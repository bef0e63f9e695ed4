import ArgumentParser
import Layers
import MemoryLedger
import Tensors
import Training
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model locally (each block from its own loss) or by backprop, into a run folder.",
        discussion: """
        Defaults give the paper's Fashion-MNIST MLP recipe: mlp 3x1024, predsim (beta 0.99), Adam \
        lr 5e-4, batch 128, 200 epochs, milestones 100,150,175,188 (x0.25), dropout 0.025, \
        LeakyReLU for sim/predsim and ReLU otherwise, crop+flip augmentation.
        """)

    @Option(help: "Dataset folder made by `layerwise shards convert`.")
    var data: String = "data/fashion-mnist"
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
    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9
    @Option(help: "Weight decay.")
    var weightDecay: Float = 0
    @Option(help: "Seed of initialisation, shuffling, augmentation and dropout.")
    var seed: UInt64 = 1
    @Flag(help: "Turn off the crop and flip augmentation.")
    var noAugment = false

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?
    @Option(help: "Loader decode threads.")
    var loaderThreads: Int = 1
    @Option(help: ArgumentHelp("Local mode: compute each block's local step in chunks of N examples with recomputation (same numbers, activation memory of one chunk plus the block's input and hand-off; costs time).",
                               valueName: "N"))
    var chunk: Int?
    @Option(help: "Use at most this many training records per epoch.")
    var trainLimit: Int?
    @Option(help: "Evaluate on at most this many test records.")
    var testLimit: Int?
    @Option(help: "Checkpoint every N steps inside an epoch (0: only at epoch ends).")
    var checkpointEvery: Int = 100
    @Option(help: ArgumentHelp("Refuse to start if the planner's predicted ledger peak exceeds this size (256MiB, 1.5GiB, 300MB).",
                               valueName: "size"))
    var memoryBudget: String?
    @Option(help: ArgumentHelp("Write memory reports (summary.txt, memory.json, memory.html, trace.json) of the first \(Trainer.memoryReportSteps) training steps into this folder.",
                               valueName: "dir"))
    var memoryReport: String?
    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard LossKind(rawValue: loss) != nil else {
            throw ValidationError("--loss \(loss) is not one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let nonlin, Nonlinearity(rawValue: nonlin) == nil { throw ValidationError("--nonlin must be relu or leakyrelu") }
        guard OptimizerKind(rawValue: optim) != nil else { throw ValidationError("--optim must be adam or sgd") }
        if let memoryBudget, ByteCount.parse(memoryBudget) == nil {
            throw ValidationError("--memory-budget \(memoryBudget) is not a size like 256MiB, 1.5GiB or 300MB")
        }
        guard parsedMilestones != nil else { throw ValidationError("--milestones must be comma-separated epochs, e.g. 100,150") }
    }

    var parsedMilestones: [Int]? {
        if milestones.isEmpty { return [] }
        let parts = milestones.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.contains(where: { $0 == nil }) ? nil : parts.map { $0! }
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
        c.optimizer.momentum = momentum
        c.optimizer.weightDecay = weightDecay
        c.seed = seed
        c.augment = !noAugment
        c.threads = threads
        c.loaderThreads = loaderThreads
        c.trainLimit = trainLimit
        c.testLimit = testLimit
        c.checkpointEvery = checkpointEvery
        c.memoryBudget = memoryBudget.flatMap(ByteCount.parse)
        c.memoryReport = memoryReport
        c.chunk = chunk
        return c
    }

    func run() throws {
        let trainer = try Trainer(config: makeConfig(), resume: resume, showProgress: !quiet)
        print("\(trainer.network.spec.description); \(trainer.network.spec.parameterCount) parameters (+\(trainer.network.spec.headParameterCount) in local heads)")
        if resume {
            let s = trainer.state
            print("resuming \(trainer.runFolder.path) at epoch \(s.cursor.epoch + 1), record \(s.cursor.recordsConsumed) of the epoch (step \(s.globalStep))")
        }
        try trainer.run()
    }
}
