import ArgumentParser
import Foundation
import Layers
import MemoryLedger
import Reports
import Shards
import Tensors
import Training

/// `layerwise plan`: the model's shape table and the predicted ledger peak, without training.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print a model's shape table and its predicted peak memory by category, without training.",
        discussion: """
        Compiles the model for an input shape (from --data, or --input-shape HxWxC, default 28x28x1) \
        into its layers (shapes, parameters, FLOPs, the working set W_k of each local block) and \
        predicts the ledger peak of one training step, local and backprop, from the same table the \
        network is built from (`profile` measures it). With --memory-budget the planner picks the \
        fastest chunk size whose peak, plus the measured process overhead of --command, fits.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customLong("loss"), .customLong("loss-sup")],
            help: "pred, sim, predsim, pred-bpf, sim-bpf, predsim-bpf or backprop.")
    var loss: String = "predsim"
    @Option(help: "Batch size.")
    var batchSize: Int = 128
    @Option(help: ArgumentHelp("Local mode: chunked local steps of N examples.", valueName: "N"))
    var chunk: Int?
    @Option(help: ArgumentHelp("Local mode, whole batches: keep (the conv sim heads hold their output for the backward: one sim-head conv forward less a step, more activation memory) or recompute (the default: each chunk of the output is computed again). The same numbers either way; --chunk always recomputes. With --memory-budget and no choice, the planner keeps it when that fits.",
                               valueName: "keep|recompute"))
    var simOutput: SimOutput?
    @Option(help: ArgumentHelp("Local mode's schedule: simultaneous (the paper's) or greedy (block by block: one round per hidden block; the plan shows each round's peak and the largest).",
                               valueName: "schedule"))
    var schedule: String = "simultaneous"
    @Option(help: "adam or sgd.")
    var optim: String = "adam"
    @Option(help: ArgumentHelp("How optimizer moments are stored: fp32, bf16 (stochastic rounding) or int8 (block-wise 8-bit codes, an fp32 scale per 256 values).",
                               valueName: "format"))
    var optimizerState: OptimizerStateFormat = .fp32
    @Option(help: "Dataset folder (shards): the input shape and classes come from it.")
    var data: String?
    @Option(help: ArgumentHelp("Input shape without --data, as HxWxC.", valueName: "HxWxC"))
    var inputShape: String = "28x28x1"
    @Option(help: "Classes without --data.")
    var classes: Int = 10
    @Option(help: ArgumentHelp("Size the run must fit (256MiB, 1.5GiB, 300MB; auto: the cgroup limit, else 80% of MemAvailable).",
                               valueName: "size"))
    var memoryBudget: String?
    @Flag(help: "With --memory-budget: the planner may store the optimizer's moments in bf16 or 8 bits (--optimizer-state) when that fits with fewer FLOPs than chunking.")
    var allowLeanState = false
    @Option(help: "The command the budget is for, whose process overhead is added: train or profile.")
    var command: String = "train"
    @Option(help: ArgumentHelp("Greedy schedule: plan hand-off caches (as train --cache-handoffs DIR; DIR is not read): each round's cache size on disk and the prefix forward it saves, and under --memory-budget or --disk-budget whether each round reads one.",
                               valueName: "dir"))
    var cacheHandoffs: String?
    @Option(help: ArgumentHelp("Precision of the planned caches: fp32 or bf16.", valueName: "precision"))
    var cachePrecision: HandOffCacheInfo.Precision = .fp32
    @Option(help: ArgumentHelp("Greedy schedule with --cache-handoffs: the largest cache on disk; rounds whose cache would not fit run their prefix.",
                               valueName: "size"))
    var diskBudget: String?
    @Option(help: ArgumentHelp("Training records a cache holds, without --data (default 60000, Fashion-MNIST's).", valueName: "N"))
    var records: Int?
    @Option(help: ArgumentHelp("Throughput assumed for the time a cache saves, in GFLOP/s (measure yours: `layerwise bench`).", valueName: "G"))
    var gflops: Double = 100
    @Option(help: "BLAS and oneDNN threads (oneDNN's scratch depends on them; default: all cores).")
    var threads: Int?
    @Option(help: ArgumentHelp("Pipeline stages (`train --stages`): each stage's blocks and predicted peak, the blocks placed so that the largest stage is smallest. auto: the fewest stages whose largest fits --memory-budget.",
                               valueName: "S|auto"))
    var stages: String?
    @Option(help: ArgumentHelp("With --stages: sends a stage keeps in flight (train --in-flight).", valueName: "N"))
    var inFlight: Int = 1

    func validate() throws {
        guard LossKind(rawValue: loss) != nil else {
            throw ValidationError("--loss must be one of: \(LossKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard OptimizerKind(rawValue: optim) != nil else { throw ValidationError("--optim must be adam or sgd") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let chunk, chunk <= 0 { throw ValidationError("--chunk must be positive") }
        if simOutput == .keep, let chunk { throw ValidationError("--sim-output keep holds each sim head's output whole; --chunk \(chunk) recomputes it chunk by chunk: give one of them") }
        guard parsedInputShape != nil else { throw ValidationError("--input-shape \(inputShape) is not HxWxC, e.g. 28x28x1 or 32x32x3") }
        guard classes >= 2 else { throw ValidationError("--classes must be at least 2") }
        if allowLeanState && memoryBudget == nil { throw ValidationError("--allow-lean-state lets the --memory-budget planner choose the optimizer state; give --memory-budget (or choose with --optimizer-state)") }
        if let memoryBudget, MemoryBudget.resolve(memoryBudget) == nil {
            throw ValidationError("--memory-budget \(memoryBudget) is not a size like 256MiB, 1.5GiB or 300MB, or auto")
        }
        guard ["train", "profile"].contains(command) else { throw ValidationError("--command must be train or profile") }
        if let stages {
            guard LossKind(rawValue: loss)?.isLocal == true, schedule == TrainingSchedule.simultaneous.rawValue else {
                throw ValidationError("--stages plans local losses under the simultaneous schedule")
            }
            guard stages == "auto" || (Int(stages) ?? 0) >= 1 else { throw ValidationError("--stages must be a number of stages or auto (got \(stages))") }
            guard stages != "auto" || memoryBudget != nil else { throw ValidationError("--stages auto picks the fewest stages that fit --memory-budget; give one") }
            guard inFlight >= 0 else { throw ValidationError("--in-flight must not be negative") }
        }
        guard let kind = TrainingSchedule(rawValue: schedule) else { throw ValidationError("--schedule must be simultaneous or greedy") }
        if kind == .greedy {
            guard LossKind(rawValue: loss)?.isLocal == true else { throw ValidationError("--schedule greedy needs a local loss") }
        }
        if cacheHandoffs != nil && kind != .greedy { throw ValidationError("--cache-handoffs needs --schedule greedy") }
        if let diskBudget {
            guard ByteCount.parse(diskBudget) != nil else { throw ValidationError("--disk-budget \(diskBudget) is not a size like 20GiB or 500MB") }
            guard cacheHandoffs != nil else { throw ValidationError("--disk-budget needs --cache-handoffs DIR") }
        }
        if let records, records <= 0 { throw ValidationError("--records must be positive") }
        guard gflops > 0 else { throw ValidationError("--gflops must be positive") }
    }

    /// (C, H, W) from "HxWxC".
    var parsedInputShape: [Int]? {
        let parts = inputShape.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return [parts[2], parts[0], parts[1]]
    }

    func run() throws {
        BLAS.setThreads(threads ?? ProcessorCount.online)
        let kind = LossKind(rawValue: loss)!
        var spec = modelOptions.spec(loss: kind)
        if let data {
            spec = try Trainer.resolvedSpec(spec, schema: try ShardDataset(directory: data).schema)
        } else {
            spec.inputShape = parsedInputShape!
            spec.classes = classes
        }
        var optimizer = OptimizerSettings()
        optimizer.kind = OptimizerKind(rawValue: optim)!
        optimizer.stateFormat = optimizerState
        var table = ShapeTable(spec: spec)
        table.keepsSimOutput = simOutput == .keep
        if let stages { return try planStages(table, stages: stages == "auto" ? nil : Int(stages)!, optimizer: optimizer) }
        var chunk = self.chunk
        let greedy = schedule == TrainingSchedule.greedy.rawValue
        var rounds: [MemoryPlan] = []
        if greedy {
            var trainRecords = records ?? 60_000
            if let data, records == nil {
                let dataset = try ShardDataset(directory: data)
                trainRecords = dataset.manifest.splits["train"]?.records ?? trainRecords
            }
            let cache = cacheHandoffs.map { _ in HandOffCacheOption(records: trainRecords, precision: cachePrecision) }
            let budget = memoryBudget.flatMap { MemoryBudget.resolve($0) }
            if let budget, budget.source != "given" { print("memory budget: \(ByteFormat.human(budget.bytes)), \(budget.source)") }
            let choice = try MemoryBudget.chooseGreedy(spec, batchSize: batchSize, chunk: chunk, optimizer: optimizer,
                                                       keepsSimOutput: table.keepsSimOutput, budget: budget?.bytes,
                                                       diskBudget: diskBudget.flatMap { ByteCount.parse($0) }, cache: cache,
                                                       overhead: command == "train" ? .train : .profile)
            if budget != nil || diskBudget != nil { choice.description.forEach { print($0) } }
            rounds = choice.rounds.map(\.plan)
            if let cache {
                print(PlanCommand.cacheLines(table, cache, batchSize: batchSize, chunks: choice.roundChunks, gflops: gflops).joined(separator: "\n"))
            }
        } else if let budget = memoryBudget.flatMap({ MemoryBudget.resolve($0) }) {
            if budget.source != "given" { print("memory budget: \(ByteFormat.human(budget.bytes)), \(budget.source)") }
            let choice = try MemoryBudget.choose(spec, batchSize: batchSize, chunk: chunk, optimizer: optimizer, allowLeanState: allowLeanState,
                                                 simOutput: simOutput, budget: budget.bytes, overhead: command == "train" ? .train : .profile)
            chunk = choice.plan.chunk
            optimizer = choice.optimizer
            spec.winograd = choice.winograd
            table = ShapeTable(spec: spec)
            table.keepsSimOutput = choice.keepsSimOutput
            choice.description.forEach { print($0) }
        }
        let plan = rounds.max { $0.peak < $1.peak } ?? MemoryPlanner.plan(table, batchSize: batchSize, chunk: chunk, optimizer: optimizer)
        let c = spec.inputShape
        print("\(spec.description); input \(c[1])x\(c[2])x\(c[0]), \(spec.classes) classes; batch \(batchSize)"
              + (plan.chunk.map { ", local steps in chunks of \($0)" } ?? "")
              + (table.keepsSimOutput && plan.chunk == nil && table.hasKeepableSimOutput ? ", sim outputs kept" : "") + "; conv engine \(table.engine.rawValue), \(BLAS.threads) threads")
        print(PlanCommand.render(table, plan))
        for r in rounds where r.round != plan.round { print(MemoryBudget.describe(r)) }
        if greedy { print("the greedy run's peak is its largest round:") }
        print(MemoryBudget.describe(plan))
        print("  at the peak: " + Category.allCases.filter { plan.peakBreakdown[$0] > 0 }
            .map { "\($0) \(ByteFormat.human(plan.peakBreakdown[$0]))" }.joined(separator: ", "))
        if kind.isLocal {
            var other = spec
            other.loss = .backprop
            other.nonlinearity = Nonlinearity(rawValue: LossKind.backprop.defaultNonlinearity) ?? other.nonlinearity
            let backprop = MemoryPlanner.plan(other, batchSize: batchSize, optimizer: optimizer)
            print(MemoryBudget.describe(backprop))
            print(String(format: "backprop / local%@: %.2fx the ledger peak", greedy ? " greedy" : "", Double(backprop.peak) / Double(plan.peak)))
        }
    }

    /// Per round k >= 1: its cache's size on disk (at most) and the prefix forward it saves an
    /// epoch against running the prefix with the round's chunk; writing the cache costs one
    /// prefix forward over the records.
    static func cacheLines(_ table: ShapeTable, _ cache: HandOffCacheOption, batchSize: Int, chunks: [Int?], gflops: Double) -> [String] {
        var lines = ["hand-off caches (\(cache.precision.rawValue), \(ByteFormat.exact(cache.records)) records; time at an assumed \(String(format: "%g", gflops)) GFLOP/s, --gflops):"]
        let steps = Double(cache.records) / Double(batchSize)
        for k in 1..<table.greedyRounds {
            let chunk = chunks[k]
            let prefix = table.greedyPrefixFLOPs(round: k, batch: batchSize, chunk: chunk) * steps
            let write = table.greedyPrefixFLOPs(round: k, batch: batchSize) * steps
            let round = table.greedyStepFLOPs(round: k, batch: batchSize, chunk: chunk) * steps
            lines.append(String(format: "  round %d: %@ on disk at most (%@ a record); saves %.1f GFLOP of prefix forward an epoch (%.0f%% of the round's, about %.1f s), writing it costs %.1f GFLOP once",
                                k + 1, ByteFormat.human(cache.diskBytes(table, round: k)),
                                ByteFormat.human(table.handOffCacheRecordBytes(round: k, valueBytes: cache.precision == .fp32 ? 4 : 2)),
                                prefix / 1e9, 100 * prefix / max(round, 1), prefix / (gflops * 1e9), write / 1e9))
        }
        return lines
    }

    /// `--stages`: each stage's blocks and predicted peak, against one process's.
    private func planStages(_ table: ShapeTable, stages: Int?, optimizer: OptimizerSettings) throws {
        guard (stages ?? 1) <= table.hiddenLayers.count else {
            throw ValidationError("--stages \(stages!) is more than the model's \(table.hiddenLayers.count) hidden blocks")
        }
        let staged: StagedPlan
        if let budget = memoryBudget.flatMap({ MemoryBudget.resolve($0) }) {
            if budget.source != "given" { print("memory budget: \(ByteFormat.human(budget.bytes)), \(budget.source)") }
            staged = try StagePlanner.choose(table, stages: stages, batchSize: batchSize, chunk: chunk, optimizer: optimizer, inFlight: inFlight,
                                             budget: budget.bytes, overhead: command == "train" ? .train : .profile)
        } else {
            staged = StagePlanner.balanced(table, stages: stages!, batchSize: batchSize, chunk: chunk, optimizer: optimizer, inFlight: inFlight)
        }
        let spec = table.spec, c = spec.inputShape
        print("\(spec.description); input \(c[1])x\(c[2])x\(c[0]), \(spec.classes) classes; batch \(batchSize)"
              + (staged.chunk.map { ", local steps in chunks of \($0)" } ?? "") + "; \(staged.placement.stageCount) stages, \(inFlight) hand-off\(inFlight == 1 ? "" : "s") in flight; conv engine \(table.engine.rawValue), \(BLAS.threads) threads")
        staged.lines.forEach { print($0) }
        let one = MemoryPlanner.plan(table, batchSize: batchSize, chunk: staged.chunk, optimizer: optimizer)
        print("one process: predicted ledger peak \(ByteFormat.human(one.peak)) (\(ByteFormat.exact(one.peak)) bytes)")
        print(String(format: "largest stage / one process: %.3fx the ledger peak", Double(staged.largest.peak) / Double(one.peak)))
        let n = staged.placement.stageCount
        print("run it with: mpirun -np \(n) layerwise train ... --stages \(n)" + (staged.chunk.map { " --chunk \($0)" } ?? "")
              + (memoryBudget.map { " --memory-budget \($0)" } ?? ""))
    }

    /// The shape table with the plan's per-layer figures.
    static func render(_ table: ShapeTable, _ plan: MemoryPlan) -> String {
        func shape(_ s: [Int]) -> String { s.isEmpty ? "-" : s.map(String.init).joined(separator: "x") }
        var t = TextTable(header: ["#", "layer", "input", "h", "hand-off", "params", "head params", "MFLOP/ex", "optimizer", "W_k"], leftAligned: [1])
        for (l, p) in zip(table.layers, plan.layers) {
            t.add([String(l.index), l.name, shape(l.input), shape(l.output), shape(l.handOff), ByteFormat.exact(l.params),
                   ByteFormat.exact(p.headParams), String(format: "%.1f", l.flopsPerExample / 1e6),
                   ByteFormat.human(p.optimizerStateBytes), p.workingSetBytes.map(ByteFormat.human) ?? "-"])
        }
        return t.lines().joined(separator: "\n")
    }
}
