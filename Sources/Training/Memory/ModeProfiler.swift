import Foundation
import Layers
import MemoryLedger
import Randomness
import Reports
import Shards
import Tensors

/// Runs a few training steps of one mode on a fresh ledger and captures its `ModeProfile`, with
/// the per-layer table: the planner's figures next to the measured peak of each layer's window
/// (see `StepWindows`). Meant to run alone in a fresh process (`layerwise profile-mode`), so the
/// process figures belong to this mode only.
public enum ModeProfiler {
    /// - Parameters:
    ///   - request: the model, batch, steps, inputs and chunk size to measure.
    ///   - mode: "local" or "backprop".
    public static func run(_ request: ProfileRequest, mode: String) throws -> ModeProfile {
        let startRSS = ProcessMemory.read().currentRSS
        BLAS.setThreads(request.threads ?? ProcessorCount.online)
        let ledger = Ledger()
        var spec = request.spec(mode: mode)
        let batch = request.batchSize

        // The data: real batches from shards, or seeded inputs of the right shape. Either way the
        // network reads them from one tensor booked as `input` (the loader's own buffers, when
        // there are any, are booked as `loader`).
        var loader: BatchLoader?
        if let data = request.data {
            let dataset = try ShardDataset(directory: data)
            let source = try dataset.split("train")
            spec = try Trainer.resolvedSpec(spec, schema: source.schema)
            var config = TrainingConfig()
            config.batchSize = batch
            config.seed = request.seed
            config.data = data
            // Memory, not accuracy, is measured: the manifest's statistics, or Fashion-MNIST's
            // when it has none (no extra pass over the data before the measured steps).
            let statistics = dataset.manifest.splits["train"]?.statistics?.normalization ?? .fashionMNIST
            (config.mean, config.std, config.augment) = (statistics.mean, statistics.std, .cropFlip)
            loader = try BatchLoader(source: source, config: Trainer.loaderConfig(config, training: true, layout: try ImageLayout(schema: source.schema)),
                                     ledger: ledger)
        }
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: ledger, zeroed: false)
        var labels = [Int32](repeating: 0, count: batch)
        var rng = Xoshiro256(seed: Xoshiro256.derive(request.seed, 0x9F0F))
        let round = mode == "local" ? request.greedyRound(spec) : nil
        let network = Network(spec: spec, seed: request.seed, optimizer: request.optimizer(mode: mode), ledger: ledger,
                              schedule: round == nil ? .simultaneous : .greedy)
        network.chunkSize = request.chunk
        network.keepsSimOutput = request.simOutput == .keep
        // The rounds before the measured one are frozen as they would be after training (their
        // weights' values do not change what is booked). `allRounds` walks every round instead,
        // `steps` steps each, so the timeline shows each round and the peak is the largest's.
        let walked: [Int?] = round.map { request.allRounds ? Array(0..<spec.hiddenBlockCount) : [$0] } ?? [nil]
        let steps = request.steps * walked.count
        var step = 0
        for r in walked {
            if let r { network.beginRound(r) }
            for _ in 0..<request.steps {
                ledger.enter(.load)
                if let loader {
                    guard let b = try loader.nextBatch(), b.count == batch else {
                        throw TrainingError.data("the dataset has fewer than \(steps) full batches of \(batch)")
                    }
                    images.pointer.update(from: b.images.pointer, count: images.count)
                    for i in 0..<batch { labels[i] = b.labels.pointer[i] }
                } else {
                    for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
                    for i in 0..<batch { labels[i] = Int32(rng.next(below: spec.classes)) }
                }
                let stats = labels.withUnsafeBufferPointer {
                    network.trainStep(images: images, labels: $0.baseAddress!, lr: 5e-4, step: step)
                }
                guard stats.outputLoss.isFinite else {
                    throw TrainingError.nonFiniteLoss(layer: "output layer", step: step, epoch: 0, value: stats.outputLoss)
                }
                step += 1
            }
        }
        let history = ledger.history()
        let windows = StepWindows.measure(events: history.events, final: ledger.current())
        let rows = plannedRows(spec, batch: batch, chunk: spec.loss.isLocal ? request.chunk : nil, optimizer: request.optimizer(mode: mode),
                               round: round, keepsSimOutput: request.simOutput == .keep, windows: windows)
        var process = ProcessFigures(ProcessMemory.read(), startRSS: startRSS)
        process.resident = ResidentSplit.read()
        process.ledgerLiveAtCapture = ledger.current().total
        withExtendedLifetime((network, images, loader)) {}
        return ModeProfile(ledger: ledger, name: round.map { _ in "local greedy" } ?? mode, model: request.modelDescription, batchSize: batch,
                           steps: steps, layers: rows, process: process)
    }

    /// Rows with the planner's figures (W_k) next to the measured ones.
    static func plannedRows(_ spec: ModelSpec, batch: Int, chunk: Int?, optimizer: OptimizerSettings, round: Int? = nil,
                            stage: Range<Int>? = nil, inFlight: Int = 1, keepsSimOutput: Bool = false, windows: [Int: LayerWindow]) -> [LayerRow] {
        var table = ShapeTable(spec: spec)
        table.keepsSimOutput = keepsSimOutput
        let plan = MemoryPlanner.plan(table, batchSize: batch, chunk: chunk, optimizer: optimizer, round: round,
                                      stage: stage, inFlight: inFlight)
        return plan.layers.map { layer -> LayerRow in
            let window = windows[layer.index]
            return LayerRow(index: layer.index, name: layer.name, params: layer.params, headParams: layer.headParams,
                            optimizerStateBytes: layer.optimizerStateBytes, workingSetBytes: layer.workingSetBytes,
                            measuredPeakBytes: window?.peakTransient,
                            survivingBytes: spec.loss.isLocal ? window?.survivingBytes : nil)
        }
    }
}
