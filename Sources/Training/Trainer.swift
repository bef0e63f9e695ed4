import Foundation
import Layers
import Reports
import MemoryLedger
import Shards
import Tensors

/// Runs a training recipe: builds the network and the loaders, trains epoch by epoch (local or
/// backprop), evaluates, writes `metrics.jsonl` and checkpoints into the run folder, and
/// resumes a killed run exactly from its last checkpoint.
public final class Trainer {
    /// The configuration the run uses: the one given, with augmentation and normalisation resolved.
    public let config: TrainingConfig
    /// Where every buffer of the run is booked; ``memorySummary()`` reads it.
    public let ledger: Ledger
    /// The model being trained (its spec has the input shape and class count of the data).
    public let network: Network
    /// The run folder: `config.json`, `metrics.jsonl` and the checkpoint.
    public let runFolder: RunFolder
    let dataset: ShardDataset
    let trainSource: RecordBlockSource
    let trainLayout: ImageLayout
    /// The training batches (nil on the stages of a pipelined run after the first: they receive
    /// hand-offs instead).
    let loader: BatchLoader?
    let progress: ProgressReporter
    /// Where the run's lines go (a staged run's stages other than the last print only their own
    /// per-stage line, through `stageLog`).
    let log: (String) -> Void
    let stageLog: (String) -> Void
    /// The link to the neighbouring stages of a pipelined run (`--stages`), nil in one process.
    let link: StageLink?
    /// Which blocks each stage trains (nil in one process).
    public let placement: StagePlacement?
    /// The hand-off cache the current greedy round reads (`--cache-handoffs`), and its round.
    private var handOffLoader: (round: Int, loader: HandOffLoader)?
    /// Tests simulate a kill inside a cache write: it stops dead after this many records.
    var killCacheAfterRecords: Int?

    /// Where training stands; saved in every checkpoint.
    public internal(set) var state: TrainerState

    /// Tests simulate a kill: the run stops dead (no checkpoint) once this many steps are done.
    var killAtGlobalStep: Int?
    struct Killed: Error {}

    /// Called after every training step while `run(onStep:)` runs (nil otherwise).
    var stepObserver: ((TrainingStep) -> Void)?

    /// Checks the configuration, opens the dataset and checks its splits against the model,
    /// then builds the network and the loader (and, unless resuming, starts the run folder).
    ///
    /// - Parameters:
    ///   - requested: the recipe; choices left nil (augmentation, normalisation) are resolved
    ///     here and recorded in ``config``.
    ///   - resume: continue from the run folder's checkpoint (its config must match; augmentation
    ///     and normalisation left unchosen take the saved run's).
    ///   - ledger: where every buffer of the run is booked; give each run its own to read its
    ///     peaks alone.
    ///   - showProgress: show each epoch's progress on standard error: a bar on a terminal,
    ///     an occasional plain line otherwise.
    ///   - log: receives the data line (splits, augmentation, normalisation: the first line a run
    ///     prints) and one line per epoch (the CLI prints them).
    ///   - link: this process's link to the other stages of a pipelined run (`config.stages`
    ///     of them, one process each): it trains only its stage's blocks (the last stage also
    ///     the output layer), the first stage reads the data, the last writes the run folder.
    /// - Throws: ``TrainingError`` for a configuration, dataset or run folder that cannot be
    ///   used, naming what to fix.
    public init(config requested: TrainingConfig, resume: Bool = false, ledger: Ledger = .shared,
                showProgress: Bool = true, log: @escaping (String) -> Void = { print($0) }, link: StageLink? = nil) throws {
        try requested.validate()
        self.ledger = ledger
        self.link = link
        let stages = requested.stages ?? 1
        if let link {
            guard link.stageCount == stages else {
                throw TrainingError.stages("--stages \(stages) but \(link.stageCount) processes were started; run `mpirun -np \(stages) layerwise train ... --stages \(stages)`")
            }
        } else {
            guard stages == 1 else { throw TrainingError.stages("--stages \(stages) needs one process per stage, started by mpirun (mpirun -np \(stages) layerwise train ... --stages \(stages))") }
        }
        let writes = link.map { $0.stage == $0.stageCount - 1 } ?? true
        self.stageLog = log
        let log = writes ? log : { _ in }
        self.log = log
        if requested.isGreedy { log(requested.scheduleLine(blocks: requested.model.hiddenBlockCount)) }
        progress = ProgressReporter(enabled: showProgress && writes)
        BLAS.setThreads(requested.threads ?? ProcessorCount.online)
        dataset = try ShardDataset(directory: requested.data)
        let saved = resume ? try RunFolder(path: requested.run).readConfig() : nil
        var config = requested
        if let saved {
            // Choices the user did not repeat are the saved run's, so a run started before they
            // had names (crop and flip, Fashion-MNIST's mean and std) resumes as it ran.
            if config.augment == nil { config.augment = saved.augment ?? .cropFlip }
            // The memory plan the run chose (or was given) stays unless the user gives another.
            if config.chunk == nil && config.memoryBudget == nil { config.chunk = saved.chunk }
            if config.memoryBudget == nil && config.diskBudget == nil && config.roundChunks == nil {
                (config.roundChunks, config.cachedRounds) = (saved.roundChunks, saved.cachedRounds)
            }
            if config.mean == nil && config.normalize == nil {
                (config.mean, config.std, config.normalize) = (saved.mean, saved.std, saved.normalize)
            }
        }
        // Every split, its schema and shapes, before anything big is allocated.
        let checked = try DataCheck(dataset: dataset, config: config)
        trainSource = checked.train
        trainLayout = checked.layout
        var notes: [String] = []
        if config.augment == nil {
            if let hint = dataset.manifest.augmentHint.flatMap(AugmentRecipe.init(rawValue:)) {
                config.augment = hint
                notes.append("augmentation \(hint.rawValue) (the dataset's --augment-hint; --augment to choose)")
            } else {
                config.augment = .crop
                notes.append("augmentation crop (the default; --augment none|crop|crop,flip to choose)")
            }
        } else {
            notes.append("augmentation \(config.augment!.rawValue)")
        }
        if config.mean == nil {
            if let statistics = dataset.manifest.splits[config.trainSplit]?.statistics {
                (config.mean, config.std, config.normalize) = (statistics.mean, statistics.std, "dataset")
                notes.append("normalised with \(config.trainSplit)'s statistics from the manifest")
            } else {
                let computed = try Normalization.compute(source: trainSource, ledger: ledger)
                (config.mean, config.std, config.normalize) = (computed.mean, computed.std, "dataset-computed")
                notes.append("normalised with \(config.trainSplit)'s statistics, computed now (the manifest has none; convert again to store them)")
            }
        } else {
            notes.append(config.normalize == "none" ? "not normalised (--normalize none):" : "normalised with")
        }
        notes[notes.count - 1] += " mean \(Trainer.format(config.mean!)) std \(Trainer.format(config.std!))"
        if config.cacheHandOffs != nil && config.augment != AugmentRecipe.none {
            // One cached hand-off per record is exact only when every epoch sees the same
            // image; per-epoch caches (a new cache for every epoch's crops) are not built.
            throw TrainingError.invalidConfig("--cache-handoffs needs --augment none: the cache holds one hand-off per record, and --augment \(config.augment!.rawValue) draws new crops every epoch (per-epoch caches are not built); give --augment none or leave out --cache-handoffs")
        }
        try checked.checkNormalization(mean: config.mean!, std: config.std!)
        log("data \(config.data): \(checked.summary); " + notes.joined(separator: "; "))
        var spec = try Trainer.resolvedSpec(config.model, schema: trainSource.schema)
        var held: StagePlacement?
        if let link {
            // Every stage computes the same placement from the shape table: consecutive blocks
            // placed so that the largest stage's predicted peak is the smallest; under a budget,
            // with the chunk size that makes every stage fit.
            var table = ShapeTable(spec: spec)
            table.keepsSimOutput = config.simOutput == .keep
            let staged = try config.memoryBudget.map {
                try StagePlanner.choose(table, stages: link.stageCount, batchSize: config.batchSize, chunk: config.chunk,
                                        optimizer: config.optimizer, inFlight: link.inFlight, budget: $0, overhead: .train)
            } ?? StagePlanner.balanced(table, stages: link.stageCount, batchSize: config.batchSize, chunk: config.chunk,
                                       optimizer: config.optimizer, inFlight: link.inFlight)
            config.chunk = staged.chunk
            held = staged.placement
            staged.lines.forEach(log)
        } else if config.isGreedy && (config.memoryBudget != nil || config.diskBudget != nil) {
            // Per round: the chunk, and with --cache-handoffs whether it reads a cache, so that
            // every round fits the memory budget and every cache the disk budget.
            let cache = config.cacheHandOffs == nil ? nil
                : HandOffCacheOption(records: checked.train.recordCount, precision: config.cachePrecision ?? .fp32)
            let choice = try MemoryBudget.chooseGreedy(spec, batchSize: config.batchSize, chunk: config.chunk, optimizer: config.optimizer,
                                                       keepsSimOutput: config.simOutput == .keep, budget: config.memoryBudget, diskBudget: config.diskBudget, cache: cache, overhead: .train)
            config.roundChunks = choice.roundChunks  // into config.json: a resumed run reuses the plan
            config.cachedRounds = cache == nil ? nil : choice.cachedRounds
            choice.description.forEach(log)
        } else if let budget = config.memoryBudget {
            // Before anything big is allocated: the planner needs only the shapes. It picks the
            // chunk size (whole batches if they fit), or checks the one given.
            let choice = try MemoryBudget.choose(spec, batchSize: config.batchSize, chunk: config.chunk, optimizer: config.optimizer,
                                                 allowLeanState: config.allowLeanState ?? false, simOutput: config.simOutput,
                                                 budget: budget, overhead: .train)
            config.chunk = choice.plan.chunk  // into config.json: a resumed run reuses the plan
            config.simOutput = choice.keepsSimOutput ? .keep : (config.simOutput == .keep ? nil : config.simOutput)
            config.optimizer = choice.optimizer
            (spec.winograd, config.model.winograd) = (choice.winograd, choice.winograd)
            choice.description.forEach(log)
        }
        self.config = config
        placement = held
        network = Network(spec: spec, seed: config.seed, optimizer: config.optimizer, ledger: ledger,
                          schedule: config.schedule ?? .simultaneous, holding: link.map { held!.blocks[$0.stage] })
        network.chunkSize = config.chunk
        network.keepsSimOutput = config.simOutput == .keep
        loader = link.map { $0.stage > 0 } == true ? nil : try BatchLoader(source: trainSource, config: Trainer.loaderConfig(config, training: true, layout: checked.layout), ledger: ledger)
        runFolder = try RunFolder(path: config.run)
        if let saved {
            guard saved.resumeKey == config.resumeKey else {
                throw TrainingError.runFolder(path: config.run, problem: "was made with another configuration; resume with the same flags (or start a new run folder)")
            }
            if config.isGreedy {
                // The checkpoint holds its round's heads and optimizer state: make them first.
                let saved = try Checkpoint.trainerState(at: runFolder.checkpointPath)
                let round = config.roundPosition(epoch: saved.cursor.epoch, blocks: network.hiddenBlockCount).round
                guard saved.round == round else {
                    throw TrainingError.checkpoint(path: runFolder.checkpointPath, problem: "records greedy round \(saved.round.map { String($0 + 1) } ?? "none") at epoch \(saved.cursor.epoch + 1), where this run's schedule has round \(round + 1)")
                }
                network.beginRound(round)
                Trainer.applyRoundChunk(network, config)
            }
            state = try Checkpoint.load(from: runFolder.checkpointPath, into: network)
            guard state.cursor.fingerprint == trainSource.fingerprint else {
                throw TrainingError.checkpoint(path: runFolder.checkpointPath, problem: "was made on other data (fingerprint \(state.cursor.fingerprint), dataset has \(trainSource.fingerprint))")
            }
        } else {
            if writes { try runFolder.start(config: config) }
            state = TrainerState(cursor: LoaderCursor(fingerprint: trainSource.fingerprint, seed: config.seed, epoch: 0,
                                                      recordsConsumed: 0, shuffle: true, poolBlocks: LoaderConfig().poolBlocks))
            if config.isGreedy {
                network.beginRound(0)
                Trainer.applyRoundChunk(network, config)
                state.round = 0
            }
        }
    }

    static func format(_ values: [Float]) -> String {
        values.count == 1 ? String(format: "%.4f", values[0]) : "[" + values.map { String(format: "%.4f", $0) }.joined(separator: ", ") + "]"
    }

    /// The normalisation the run applies to every split (training and evaluation alike).
    public var normalization: Normalization { Normalization(mean: config.mean ?? [0], std: config.std ?? [1]) }

    /// The network spec with the input shape and class count taken from the data.
    package static func resolvedSpec(_ spec: ModelSpec, schema: RecordSchema) throws -> ModelSpec {
        guard let image = schema.field("image") else { throw TrainingError.data("the dataset has no `image` field") }
        var spec = spec
        let hwc = image.shape.count == 3 ? image.shape : (image.shape.count == 2 ? image.shape + [1] : [1, 1, image.elementCount])
        spec.inputShape = [hwc[2], hwc[0], hwc[1]]
        spec.classes = schema.classCount
        return spec
    }

    /// The loader of a split: training batches are shuffled and augmented (the crop's padding
    /// from the image size in `layout`), evaluation batches are neither; both are normalised
    /// with the run's mean and std.
    static func loaderConfig(_ config: TrainingConfig, training: Bool, layout: ImageLayout? = nil) -> LoaderConfig {
        let augment = training ? layout.flatMap { config.augment?.augmentation(height: $0.height, width: $0.width) } : nil
        return LoaderConfig(batchSize: config.batchSize, shuffle: training, seed: config.seed,
                            threads: config.loaderThreads, augment: augment,
                            dropLast: false, mean: config.mean, std: config.std)
    }

    /// Trains until `config.epochs`, returning the metrics of the epochs run now.
    @discardableResult
    public func run() throws -> [EpochMetrics] {
        var all: [EpochMetrics] = []
        while state.cursor.epoch < runEpochs {
            all.append(try runEpoch())
        }
        return all
    }

    /// Epochs the run trains in all (greedy: the sum of its rounds).
    public var runEpochs: Int { config.runEpochs(blocks: network.hiddenBlockCount) }

    /// Runs (the rest of) the current epoch, evaluates, appends to metrics.jsonl and checkpoints.
    public func runEpoch() throws -> EpochMetrics {
        if let link, let placement { return try runStagedEpoch(link: link, placement: placement) }
        let epoch = state.cursor.epoch
        let lr = config.learningRate(epoch: epoch, blocks: network.hiddenBlockCount)
        let title = "epoch \(epoch + 1)/\(runEpochs)" + (network.round.map { " (round \($0 + 1)/\(network.hiddenBlockCount))" } ?? "")
        let recordsPerEpoch = min(config.trainLimit ?? trainSource.recordCount, trainSource.recordCount)
        let stepsPerEpoch = (recordsPerEpoch + config.batchSize - 1) / config.batchSize
        ledger.resetPeaks()
        ProcessMemory.resetPeak()
        let cache = try handOffCache()
        if let cache { try cache.resume(from: state.cursor) } else { try loader!.resume(from: state.cursor) }
        var memoryReport = startMemoryReport()
        let started = MonotonicClock.now()
        var samples = 0
        while state.cursor.recordsConsumed < recordsPerEpoch, let batch = try nextInput(cache) {
            let count = min(batch.count, recordsPerEpoch - state.cursor.recordsConsumed)
            let input = batch.input.rows(0..<count)
            if let kill = killAtGlobalStep, state.globalStep >= kill { throw Killed() }
            let stats = cache != nil
                ? network.trainStep(handOffs: input, labels: batch.labels, lr: lr, step: state.globalStep)
                : network.trainStep(images: input, labels: batch.labels, lr: lr, step: state.globalStep)
            try checkFinite(stats, epoch: epoch)
            state.accumulate(stats, count: count, layers: network.hiddenBlockCount)
            state.globalStep += 1
            state.cursor.recordsConsumed += count
            samples += count
            stepObserver?(TrainingStep(epoch: epoch + 1, step: state.globalStep, stepInEpoch: state.stepInEpoch,
                                       stepsInEpoch: stepsPerEpoch, examples: count, learningRate: lr, stats: stats))
            if let report = memoryReport, state.globalStep - report.firstStep >= Trainer.memoryReportSteps {
                try writeMemoryReport(report, steps: state.globalStep - report.firstStep)
                memoryReport = nil
            }
            let rate = Double(samples) / max(MonotonicClock.now() - started, 1e-9)
            progress.update(title: title, done: state.stepInEpoch, total: stepsPerEpoch,
                            status: String(format: "loss %.4f err %.2f%% %.0f samples/s", state.meanOutputLoss, state.trainError, rate))
            if config.checkpointEvery > 0 && state.stepInEpoch % config.checkpointEvery == 0 && state.cursor.recordsConsumed < recordsPerEpoch {
                try Checkpoint.save(network: network, state: state, normalization: normalization, to: runFolder.checkpointPath)
            }
        }
        progress.finish(clear: true)
        if let report = memoryReport {  // an epoch shorter than the report's steps
            try writeMemoryReport(report, steps: state.globalStep - report.firstStep)
        }
        let seconds = MonotonicClock.now() - started
        let peak = ledger.peak()
        // A greedy round before the last has no trained output layer, and its later blocks are
        // dormant: the model has no test error yet (the epoch's line shows the block's local error).
        let modelComplete = network.round.map { $0 == network.hiddenBlockCount - 1 } ?? true
        let testError = try config.testSplit.flatMap { modelComplete ? try evaluate(split: $0, limit: config.testLimit) : nil }
        var metrics = state.epochMetrics(epoch: epoch, lr: lr, seconds: seconds + state.secondsBefore, testError: testError, peak: peak)
        metrics.samplesPerSecond = Double(samples) / max(seconds, 1e-9)
        try runFolder.append(metrics)
        state.finishEpoch()
        if config.isGreedy && state.cursor.epoch < runEpochs {
            // A round ends with its last epoch: the next one's state is made before the
            // checkpoint, so a resumed run finds the tensors of the round it resumes in.
            network.beginRound(config.roundPosition(epoch: state.cursor.epoch, blocks: network.hiddenBlockCount).round)
            Trainer.applyRoundChunk(network, config)
            state.round = network.round
        }
        try Checkpoint.save(network: network, state: state, normalization: normalization, to: runFolder.checkpointPath)
        log(metrics.summaryLine(epochs: runEpochs))
        return metrics
    }

    /// The current greedy round's chunk when the planner chose one per round.
    private static func applyRoundChunk(_ network: Network, _ config: TrainingConfig) {
        if let chunks = config.roundChunks, let round = network.round, round < chunks.count { network.chunkSize = chunks[round] }
    }

    // MARK: --cache-handoffs

    /// Whether round `k` (0-based) reads its frozen prefix's output from a hand-off cache.
    func roundReadsCache(_ k: Int) -> Bool {
        guard config.cacheHandOffs != nil, k > 0 else { return false }
        return config.cachedRounds.map { $0.contains(k) } ?? true
    }

    /// The cache the current round reads (nil: it runs the frozen prefix). The first epoch of a
    /// cached round (or the first after a resume) opens it, building it when it is missing,
    /// half-written or stale, and deletes this run's caches of earlier rounds first: one cache
    /// is on disk at a time.
    private func handOffCache() throws -> HandOffLoader? {
        guard let round = network.round, let root = config.cacheHandOffs, roundReadsCache(round) else {
            handOffLoader = nil
            return nil
        }
        if let open = handOffLoader, open.round == round { return open.loader }
        handOffLoader = nil
        for earlier in 1..<round {
            let dir = HandOffCache.directory(root, round: earlier)
            if let info = try? DatasetManifest.load(directory: dir).handOff, info.run == config.run,
               info.configDigest == HandOffCache.configDigest(config) {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        let (cache, outcome) = try HandOffCache.open(root: root, round: round, network: network, config: config, source: trainSource,
                                                     layout: trainLayout, ledger: ledger, killAfterRecords: killCacheAfterRecords)
        let dir = HandOffCache.directory(root, round: round)
        switch outcome {
        case .reused:
            log("round \(round + 1) reads the hand-off cache \(dir) (\(cache.info.precision.rawValue) \(cache.info.shapeText), \(ByteFormat.human(HandOffCache.diskBytes(dir))) on disk)")
        case let .built(seconds, bytes, reason):
            log(String(format: "hand-off cache for round %d written to %@ (%@): %d records of %@ %@, %@ on disk, %.1fs",
                       round + 1, dir, reason, cache.recordCount, cache.info.precision.rawValue, cache.info.shapeText,
                       ByteFormat.human(bytes), seconds))
        }
        handOffLoader = (round, cache)
        return cache
    }

    /// One batch's input (images, or hand-offs from the cache), its labels and its size.
    private struct Input {
        var input: Tensor
        var labels: UnsafePointer<Int32>
        var count: Int
    }

    private func nextInput(_ cache: HandOffLoader?) throws -> Input? {
        if let cache {
            guard let b = try cache.nextBatch() else { return nil }
            return Input(input: Tensor(storage: b.values, shape: [b.count] + b.shape), labels: b.labels.pointer, count: b.count)
        }
        guard let b = try loader!.nextBatch() else { return nil }
        return Input(input: Tensor(storage: b.images, shape: [b.count, b.channels, b.height, b.width]), labels: b.labels.pointer, count: b.count)
    }

    // MARK: --memory-report

    /// Training steps the `--memory-report` covers: the first ones this process runs.
    public static let memoryReportSteps = 3
    var memoryReportWritten = false

    struct MemoryReportStart {
        var firstStep: Int
        var startRSS: Int
    }

    /// Starts recording the ledger's history for the report, once per process (nil when no report
    /// is asked for or it is written already).
    func startMemoryReport() -> MemoryReportStart? {
        guard config.memoryReport != nil, !memoryReportWritten else { return nil }
        ledger.clearEvents()
        ledger.setRecording(true)
        return MemoryReportStart(firstStep: state.globalStep, startRSS: ProcessMemory.read().currentRSS)
    }

    /// Writes the reports of the steps since `start` into `config.memoryReport`, as one mode
    /// (`MemoryComparison(single:)`): the same files `layerwise profile` writes.
    private func writeMemoryReport(_ start: MemoryReportStart, steps: Int) throws {
        guard let directory = config.memoryReport else { return }
        memoryReportWritten = true
        let spec = network.spec
        let windows = StepWindows.measure(events: ledger.history().events, final: ledger.current())
        let rows = ModeProfiler.plannedRows(spec, batch: config.batchSize, chunk: config.chunk, optimizer: config.optimizer,
                                            round: network.round, windows: windows)
        var process = ProcessFigures(ProcessMemory.read(), startRSS: start.startRSS)
        process.resident = ResidentSplit.read()
        process.ledgerLiveAtCapture = ledger.current().total
        let profile = ModeProfile(ledger: ledger, name: spec.loss.isLocal ? "local (\(spec.loss.rawValue))" : "backprop",
                                  model: spec.description + " (training run)", batchSize: config.batchSize, steps: steps,
                                  layers: rows, process: process)
        try ReportWriter(directory: directory, options: .stamped()).write(MemoryComparison(single: profile))
        log("memory report of the first \(steps) steps written to \(directory)/: \(ReportWriter.fileNames.joined(separator: ", "))")
    }

    func checkFinite(_ stats: StepStats, epoch: Int) throws {
        guard stats.outputLoss.isFinite else {
            throw TrainingError.nonFiniteLoss(layer: "output layer", step: state.globalStep, epoch: epoch, value: stats.outputLoss)
        }
        for (i, b) in stats.blocks.enumerated() where !b.loss.isFinite {
            throw TrainingError.nonFiniteLoss(layer: "block \(stats.firstBlock + i)", step: state.globalStep, epoch: epoch, value: b.loss)
        }
    }

    /// Test error (percent) of the network on a split, heads not run.
    public func evaluate(split: String, limit: Int? = nil) throws -> Double {
        try Evaluator.error(network: network, dataset: dataset, split: split, config: config, limit: limit, ledger: ledger)
    }
}
