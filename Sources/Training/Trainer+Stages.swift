import FileSystem
import Foundation
import Layers
import MemoryLedger
import Reports
import Shards
import Tensors

/// A pipelined run (`--stages S`, one process per stage): stage s trains its consecutive
/// blocks on the hand-off stage s - 1 sends, and sends its own hand-off, the labels and the
/// blocks' statistics on; the first stage reads the batches, the last trains the output layer,
/// keeps the epoch's statistics and writes the run folder. Nothing is sent backward, so the
/// stages work on different batches at once. Block k at step t sees block k - 1's output of
/// step t computed before k - 1's update, with the same dropout seeds: the same numbers as one
/// process.
extension Trainer {
    var stageIndex: Int { link?.stage ?? 0 }
    var isLastStage: Bool { link.map { $0.stage == $0.stageCount - 1 } ?? true }

    func runStagedEpoch(link: StageLink, placement: StagePlacement) throws -> EpochMetrics {
        let stage = link.stage, last = isLastStage
        let range = placement.blocks[stage]
        let layers = network.hiddenBlockCount
        let epoch = state.cursor.epoch
        let lr = config.learningRate(epoch: epoch, blocks: layers)
        let title = "epoch \(epoch + 1)/\(runEpochs)"
        if stage == 0 { try loader!.resume(from: state.cursor) }
        let recordsPerEpoch = min(config.trainLimit ?? trainSource.recordCount, trainSource.recordCount)
        let stepsPerEpoch = (recordsPerEpoch + config.batchSize - 1) / config.batchSize
        ledger.resetPeaks()
        ProcessMemory.resetPeak()
        var memoryReport = startMemoryReport()
        var stageProfile: ModeProfile?
        let started = MonotonicClock.now()
        var samples = 0
        while true {
            if !last { try link.settle() }  // at most inFlight earlier hand-offs held while this step computes
            let input: Tensor, labels: UnsafeBufferPointer<Int32>
            var before: [BlockStepStats] = []
            var batch: Batch?  // the first stage's batch buffers, alive until its step is done
            if stage == 0 {
                guard state.cursor.recordsConsumed < recordsPerEpoch, let b = try loader!.nextBatch() else { break }
                let count = min(b.count, recordsPerEpoch - state.cursor.recordsConsumed)
                input = Tensor(storage: b.images, shape: [b.count, b.channels, b.height, b.width]).rows(0..<count)
                labels = UnsafeBufferPointer(start: b.labels.pointer, count: count)
                batch = b
            } else {
                let m = try link.receive(layer: range.lowerBound, ledger: ledger)
                if m.kind == .epochEnd { break }
                guard m.kind == .trainBatch, m.step == state.globalStep, let handOff = m.handOff, m.blockStats.count == range.lowerBound else {
                    throw TrainingError.stages("stage \(stage + 1) expected training step \(state.globalStep + 1) from stage \(stage), got \(m.kind) \(m.step + 1) with \(m.blockStats.count) blocks' statistics")
                }
                input = handOff
                labels = m.labels
                before = m.blockStats
            }
            let count = labels.count
            if let kill = killAtGlobalStep, state.globalStep >= kill { throw Killed() }
            var r = network.trainStage(input, labels: labels.baseAddress!, lr: lr, step: state.globalStep, blocks: range, trainsOutput: last)
            try checkFinite(r.stats, epoch: epoch)
            if !last {
                try link.send(.trainBatch, step: state.globalStep, labels: labels, blockStats: before + r.stats.blocks, handOff: r.handOff)
                r.handOff = nil
            }
            withExtendedLifetime(batch) {}
            if last {
                var whole = r.stats
                whole.blocks = before + r.stats.blocks
                whole.firstBlock = 0
                state.accumulate(whole, count: count, layers: layers)
                state.globalStep += 1
                stepObserver?(TrainingStep(epoch: epoch + 1, step: state.globalStep, stepInEpoch: state.stepInEpoch,
                                           stepsInEpoch: stepsPerEpoch, examples: count, learningRate: lr, stats: whole))
            } else {
                // The statistics travel on; this stage counts only where the epoch stands.
                state.stepInEpoch += 1
                state.samplesInEpoch += count
                state.globalStep += 1
            }
            state.cursor.recordsConsumed += count
            samples += count
            if let report = memoryReport, state.globalStep - report.firstStep >= Trainer.memoryReportSteps {
                stageProfile = stageMemoryProfile(report, steps: state.globalStep - report.firstStep, link: link, placement: placement)
                memoryReport = nil
            }
            let rate = Double(samples) / max(MonotonicClock.now() - started, 1e-9)
            progress.update(title: title, done: state.stepInEpoch, total: stepsPerEpoch,
                            status: String(format: "loss %.4f err %.2f%% %.0f samples/s", state.meanOutputLoss, state.trainError, rate))
            if config.checkpointEvery > 0 && state.stepInEpoch % config.checkpointEvery == 0 && state.cursor.recordsConsumed < recordsPerEpoch {
                try saveStagedCheckpoint(link: link, placement: placement)
            }
        }
        if !last { try link.send(.epochEnd, step: state.globalStep, labels: UnsafeBufferPointer(start: nil, count: 0), blockStats: [], handOff: nil) }
        progress.finish(clear: true)
        if let report = memoryReport {  // an epoch shorter than the report's steps
            stageProfile = stageMemoryProfile(report, steps: state.globalStep - report.firstStep, link: link, placement: placement)
        }
        let seconds = MonotonicClock.now() - started
        let peak = ledger.peak()
        let rss = ProcessMemory.read().peakRSS
        let testError = try config.testSplit.flatMap { try evaluateStaged(link: link, placement: placement, split: $0, limit: config.testLimit) }
        var metrics = state.epochMetrics(epoch: epoch, lr: lr, seconds: seconds + state.secondsBefore, testError: testError, peak: peak)
        metrics.samplesPerSecond = Double(samples) / max(seconds, 1e-9)
        stageLog(String(format: "stage %d/%d (%@) epoch %d: %.0f samples/s, ledger peak %.1f MiB, peak RSS %.1f MiB",
                        stage + 1, link.stageCount, Self.blockList(range, output: last), epoch + 1, metrics.samplesPerSecond,
                        Double(peak.total) / 1_048_576, Double(rss) / 1_048_576))
        if let stageProfile { try writeStagedMemoryReport(stageProfile, link: link) }
        if last { try runFolder.append(metrics) }
        state.finishEpoch()
        try saveStagedCheckpoint(link: link, placement: placement)
        log(metrics.summaryLine(epochs: runEpochs))
        return metrics
    }

    /// This stage's profile of the steps since `start`: its ledger's timeline, peaks and layers
    /// (against the stage plan), its process's RSS.
    func stageMemoryProfile(_ start: MemoryReportStart, steps: Int, link: StageLink, placement: StagePlacement) -> ModeProfile {
        let range = placement.blocks[link.stage]
        let windows = StepWindows.measure(events: ledger.history().events, final: ledger.current())
        let rows = ModeProfiler.plannedRows(network.spec, batch: config.batchSize, chunk: config.chunk, optimizer: config.optimizer,
                                            stage: range, inFlight: link.inFlight, windows: windows)
        var process = ProcessFigures(ProcessMemory.read(), startRSS: start.startRSS)
        process.resident = ResidentSplit.read()
        process.ledgerLiveAtCapture = ledger.current().total
        return ModeProfile(ledger: ledger, name: "stage \(link.stage + 1)/\(link.stageCount) (\(Self.blockList(range, output: isLastStage)))",
                           model: network.spec.description + " (pipelined training run)", batchSize: config.batchSize, steps: steps,
                           layers: rows, process: process)
    }

    /// Every stage writes its profile next to the report, then the last stage writes the report
    /// of them all (a lane per stage in memory.html and trace.json) and removes the parts.
    func writeStagedMemoryReport(_ profile: ModeProfile, link: StageLink) throws {
        guard let directory = config.memoryReport else { return }
        memoryReportWritten = true
        func part(_ s: Int) -> String { directory + "/stage-\(s + 1)-of-\(link.stageCount).json" }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.runFolder(path: directory, problem: "cannot be created (\(error.localizedDescription))")
        }
        try AtomicFile.write(try JSONEncoder().encode(profile), to: part(link.stage))
        try link.barrier()
        if isLastStage {
            let profiles = try (0..<link.stageCount).map { s -> ModeProfile in
                guard let data = FileManager.default.contents(atPath: part(s)),
                      let p = try? JSONDecoder().decode(ModeProfile.self, from: data) else {
                    throw TrainingError.runFolder(path: part(s), problem: "is missing or unreadable: stage \(s + 1) did not write its memory profile (is \(directory) on a file system every stage writes to?)")
                }
                return p
            }
            try ReportWriter(directory: directory, options: .stamped()).write(MemoryComparison(stages: profiles))
            for s in 0..<link.stageCount { try? FileManager.default.removeItem(atPath: part(s)) }
            log("memory report of every stage's first \(profile.steps) steps written to \(directory)/: \(ReportWriter.fileNames.joined(separator: ", "))")
        }
        try link.barrier()
    }

    static func blockList(_ range: Range<Int>, output: Bool) -> String {
        (range.count > 1 ? "blocks \(range.lowerBound + 1)-\(range.upperBound)" : "block \(range.lowerBound + 1)") + (output ? " + output" : "")
    }

    /// Test error of the pipelined network (known to the last stage; nil on the others): the
    /// first stage reads the split, every stage runs its blocks forward (inference), the last
    /// counts the output layer's correct predictions.
    func evaluateStaged(link: StageLink, placement: StagePlacement, split: String, limit: Int?) throws -> Double? {
        let stage = link.stage, last = isLastStage
        let range = placement.blocks[stage]
        if stage == 0 {
            let source = try dataset.split(split)
            let testLoader = try BatchLoader(source: source, config: Trainer.loaderConfig(config, training: false), ledger: ledger)
            testLoader.startEpoch(0)
            let total = min(limit ?? source.recordCount, source.recordCount)
            var seen = 0, n = 0
            while seen < total, let batch = try testLoader.nextBatch() {
                let count = min(batch.count, total - seen)
                let images = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width]).rows(0..<count)
                let out = network.evaluateStage(images, blocks: range)
                try link.send(.evaluationBatch, step: n, labels: UnsafeBufferPointer(start: batch.labels.pointer, count: count),
                              blockStats: [], handOff: out)
                seen += count
                n += 1
            }
            try link.send(.evaluationEnd, step: n, labels: UnsafeBufferPointer(start: nil, count: 0), blockStats: [], handOff: nil)
            guard seen > 0 else { throw TrainingError.data("split \(split) has no records to evaluate") }
            return nil
        }
        var seen = 0, correct = 0
        while true {
            let m = try link.receive(layer: range.lowerBound, ledger: ledger)
            if m.kind == .evaluationEnd {
                if !last { try link.send(.evaluationEnd, step: m.step, labels: m.labels, blockStats: [], handOff: nil) }
                break
            }
            guard m.kind == .evaluationBatch, let input = m.handOff else {
                throw TrainingError.stages("stage \(stage + 1) expected an evaluation batch from stage \(stage), got \(m.kind)")
            }
            let out = network.evaluateStage(input, blocks: range)
            if last {
                correct += network.evaluateOutput(out, labels: m.labels.baseAddress!)
            } else {
                try link.send(.evaluationBatch, step: m.step, labels: m.labels, blockStats: [], handOff: out)
            }
            seen += m.count
        }
        guard last else { return nil }
        guard seen > 0 else { throw TrainingError.data("split \(split) has no records to evaluate") }
        return 100 * Double(seen - correct) / Double(seen)
    }

    /// Drains the pipeline, writes each stage's part, then the last stage writes the whole
    /// checkpoint from the parts (`Checkpoint.mergeParts`): the same file one process writes,
    /// which `eval`, a one-process run and a staged run all resume from. Stages wait for each
    /// other around it, so no stage runs ahead into the next checkpoint.
    func saveStagedCheckpoint(link: StageLink, placement: StagePlacement) throws {
        let path = runFolder.checkpointPath
        try link.drain()
        try Checkpoint.savePart(network: network, placement: placement, stage: link.stage,
                                to: Checkpoint.partPath(path, stage: link.stage, of: link.stageCount))
        try link.barrier()
        if isLastStage {
            try Checkpoint.mergeParts(checkpoint: path, placement: placement, spec: network.spec, state: state, normalization: normalization)
            for s in 0..<link.stageCount { try? FileManager.default.removeItem(atPath: Checkpoint.partPath(path, stage: s, of: link.stageCount)) }
        }
        try link.barrier()
    }
}
