import Layers
import MemoryLedger
import Shards
import Tensors

/// Test error of a model on a split: BatchNorm with running statistics, no dropout, no heads.
/// It runs an `InferenceNetwork`, micro-batch by micro-batch, so the memory it needs beyond the
/// weights does not grow with the batch size.
public enum Evaluator {
    /// Error in percent of a training network, through an inference network over its own
    /// tensors (shared, not copied; the conv workspace and activations live only during this call).
    public static func error(network: Network, dataset: ShardDataset, split: String, config: TrainingConfig,
                             limit: Int? = nil, ledger: Ledger = .shared) throws -> Double {
        let inference = try inferenceNetwork(sharing: network)
        return try measure(network: inference, dataset: dataset, split: split, config: config, limit: limit, ledger: ledger).error
    }

    /// An inference network whose parameters are `network`'s tensors, found by their checkpoint
    /// names (`Checkpoint.namedTensors`): the storage is shared, nothing is copied or booked.
    public static func inferenceNetwork(sharing network: Network,
                                        microBatch: Int = InferenceNetwork.defaultMicroBatch) throws -> InferenceNetwork {
        let tensors = Dictionary(Checkpoint.namedTensors(network), uniquingKeysWith: { first, _ in first })
        return try InferenceNetwork(spec: network.spec, parameters: .shared { tensors[$0] }, microBatch: microBatch,
                                    ledger: network.ledger)
    }

    /// Error in percent and the number of records evaluated.
    public static func measure(network: InferenceNetwork, dataset: ShardDataset, split: String, config: TrainingConfig,
                               limit: Int? = nil, ledger: Ledger = .shared) throws -> (error: Double, records: Int) {
        let source = try dataset.split(split)
        let loader = try BatchLoader(source: source, config: Trainer.loaderConfig(config, training: false), ledger: ledger)
        loader.startEpoch(0)
        let total = min(limit ?? source.recordCount, source.recordCount)
        var seen = 0, correct = 0
        while seen < total, let batch = try loader.nextBatch() {
            let count = min(batch.count, total - seen)
            let images = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width]).rows(0..<count)
            correct += network.evaluate(images: images, labels: batch.labels.pointer)
            seen += count
        }
        guard seen > 0 else { throw TrainingError.data("split \(split) has no records to evaluate") }
        return (100 * Double(seen - correct) / Double(seen), seen)
    }
}

/// `layerwise eval`: the error of a run's or a checkpoint's model on a split.
public enum Evaluation {
    /// What an evaluation measured.
    public struct Result: Sendable {
        /// The model's description.
        public var model: String
        /// Error in percent.
        public var error: Double
        /// Records evaluated.
        public var records: Int
        /// The ledger's high-water mark over loading and evaluating, with its breakdown.
        public var ledgerPeak: LedgerSnapshot
    }

    /// Evaluates the model of a run folder's checkpoint (or of `checkpoint`) on `split` of the
    /// dataset (`data`, else the run's), normalised as the model was trained.
    public static func run(runFolder: String?, checkpoint: String?, data: String?, split: String,
                           batchSize: Int = 500, microBatch: Int = InferenceNetwork.defaultMicroBatch,
                           threads: Int? = nil) throws -> Result {
        var config = TrainingConfig()
        var checkpointPath = checkpoint ?? ""
        if let runFolder {
            let folder = try RunFolder(path: runFolder)
            config = try folder.readConfig()
            checkpointPath = folder.checkpointPath
        }
        if let data { config.data = data }
        // The normalisation the model was trained with; checkpoints and configs from before it
        // was recorded ran with Fashion-MNIST's.
        let trained = try Checkpoint.normalization(at: checkpointPath) ?? Normalization(mean: config.mean ?? [0.286], std: config.std ?? [0.353])
        (config.mean, config.std) = (trained.mean, trained.std)
        config.batchSize = batchSize
        BLAS.setThreads(threads ?? ProcessorCount.online)
        let spec = try Checkpoint.spec(at: checkpointPath)
        if let round = try Checkpoint.trainerState(at: checkpointPath).round, round < spec.hiddenBlockCount - 1 {
            throw TrainingError.checkpoint(path: checkpointPath, problem: "is of a greedy run in round \(round + 1) of \(spec.hiddenBlockCount): the blocks after \(round + 1) and the output layer have not trained yet, so the model has no test error until its last round")
        }
        let dataset = try ShardDataset(directory: config.data)
        let source = try dataset.split(split)
        let dataSpec = try Trainer.resolvedSpec(spec, schema: source.schema)
        guard dataSpec.inputShape == spec.inputShape, dataSpec.classes == spec.classes else {
            throw TrainingError.checkpoint(path: checkpointPath, problem: "expects inputs \(spec.inputShape) with \(spec.classes) classes, but \(config.data) holds \(dataSpec.inputShape) with \(dataSpec.classes)")
        }
        let ledger = Ledger()
        let network = try Checkpoint.inferenceNetwork(from: checkpointPath, microBatch: microBatch, ledger: ledger)
        let r = try Evaluator.measure(network: network, dataset: dataset, split: split, config: config, ledger: ledger)
        return Result(model: spec.description, error: r.error, records: r.records, ledgerPeak: ledger.peak())
    }
}
