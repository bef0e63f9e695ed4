import ArgumentParser
import Foundation
import Layers
import MemoryLedger
import Reports
import Tensors
import Training

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Measure the same model and batch in local and backprop mode, each in a fresh process, and write memory reports.",
        discussion: """
        Writes summary.txt, memory.json, memory.html (open offline) and trace.json (ui.perfetto.dev) \
        into --out, and prints the summary. Without --data the inputs are generated from a seeded \
        generator in the model's input shape (1x28x28, 10 classes). The memory planner predicts \
        each mode's ledger peak (and W_k) from the model's shape table and checks it against the \
        measurement; with --memory-budget it picks local mode's chunk size (`layerwise plan` shows it \
        without running).
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customLong("loss"), .customLong("loss-sup")],
            help: "The local loss: pred, sim, predsim, pred-bpf, sim-bpf or predsim-bpf (backprop is always the other mode).")
    var loss: String = "predsim"
    @Option(help: "Batch size.")
    var batchSize: Int = 128
    @Option(help: "Training steps per mode.")
    var steps: Int = 3
    @Option(help: "adam or sgd.")
    var optim: String = "adam"
    @Option(help: ArgumentHelp("How optimizer moments are stored: fp32, bf16 (stochastic rounding) or int8 (block-wise 8-bit codes, an fp32 scale per 256 values).",
                               valueName: "format"))
    var optimizerState: OptimizerStateFormat = .fp32
    @Option(help: "Dataset folder (shards); default: generated inputs.")
    var data: String?
    @Option(help: "Seed of initialisation, inputs and dropout.")
    var seed: UInt64 = 1
    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?
    @Option(help: ArgumentHelp("Local mode: compute each block's local step in chunks of N examples with recomputation (same numbers, activation memory of one chunk plus the block's input and hand-off).",
                               valueName: "N"))
    var chunk: Int?
    @Option(help: ArgumentHelp("Local mode, whole batches: keep (the conv sim heads hold their output for the backward: one sim-head conv forward less a step, more activation memory) or recompute (the default: each chunk of the output is computed again). The same numbers either way; --chunk always recomputes. With --memory-budget and no choice, the planner keeps it when that fits (local mode).",
                               valueName: "keep|recompute"))
    var simOutput: SimOutput?
    @Option(help: ArgumentHelp("Local mode's schedule: simultaneous (the paper's) or greedy (block by block; the profile measures one round, see --round).",
                               valueName: "schedule"))
    var schedule: String = "simultaneous"
    @Option(help: ArgumentHelp("Greedy schedule: the round to measure, from 1, or all (every round, --steps each, marked on the timeline; the peak is the largest round's). Default: the round with the largest predicted peak, the greedy run's peak.",
                               valueName: "K|all"))
    var round: String?
    @Option(help: "Report folder.")
    var out: String = "reports/mlp"
    @Option(help: ArgumentHelp("Local mode must fit this size (256MiB, 1.5GiB, 300MB; auto: the cgroup limit, else 80% of MemAvailable): the planner picks the chunk size, or refuses; backprop runs as the comparison.",
                               valueName: "size"))
    var memoryBudget: String?
    @Flag(help: "With --memory-budget: the planner may store the optimizer's moments in bf16 or 8 bits (--optimizer-state) when that fits with fewer FLOPs than chunking.")
    var allowLeanState = false
    @Option(help: ArgumentHelp("Only write the profile request as JSON to this file, for `profile-mode` (tools/memory-cap.sh).",
                               valueName: "file"))
    var saveRequest: String?

    func validate() throws {
        guard let kind = LossKind(rawValue: loss), kind.isLocal else {
            throw ValidationError("--loss must be a local loss: \(LossKind.allCases.filter(\.isLocal).map(\.rawValue).joined(separator: ", "))")
        }
        guard OptimizerKind(rawValue: optim) != nil else { throw ValidationError("--optim must be adam or sgd") }
        guard batchSize > 0, steps > 0 else { throw ValidationError("--batch-size and --steps must be positive") }
        if let chunk, chunk <= 0 { throw ValidationError("--chunk must be positive") }
        if simOutput == .keep, let chunk { throw ValidationError("--sim-output keep holds each sim head's output whole; --chunk \(chunk) recomputes it chunk by chunk: give one of them") }
        if allowLeanState && memoryBudget == nil { throw ValidationError("--allow-lean-state lets the --memory-budget planner choose the optimizer state; give --memory-budget (or choose with --optimizer-state)") }
        if let memoryBudget, MemoryBudget.resolve(memoryBudget) == nil {
            throw ValidationError("--memory-budget \(memoryBudget) is not a size like 256MiB, 1.5GiB or 300MB, or auto (the cgroup limit, else \(Int(MemoryBudget.availableFraction * 100))% of MemAvailable)")
        }
        guard let kind = TrainingSchedule(rawValue: schedule) else { throw ValidationError("--schedule must be simultaneous or greedy") }
        if let round {
            let rounds = modelOptions.spec(loss: .predsim).hiddenBlockCount
            guard kind == .greedy else { throw ValidationError("--round needs --schedule greedy") }
            guard round == "all" || Int(round).map({ $0 >= 1 && $0 <= rounds }) == true else {
                throw ValidationError("--round \(round): give a round in 1...\(rounds) (one round per hidden block) or all")
            }
        }
    }

    func makeRequest() -> ProfileRequest {
        var r = ProfileRequest()
        r.model = modelOptions.spec(loss: LossKind(rawValue: loss)!)
        r.optimizer.kind = OptimizerKind(rawValue: optim)!
        r.optimizer.stateFormat = optimizerState
        r.batchSize = batchSize
        r.steps = steps
        r.data = data
        r.seed = seed
        r.threads = threads
        r.chunk = chunk
        r.simOutput = simOutput
        r.schedule = schedule == TrainingSchedule.greedy.rawValue ? .greedy : nil
        r.round = round.flatMap { Int($0) }.map { $0 - 1 }
        r.allRounds = round == "all"
        return r
    }

    func run() throws {
        if let saveRequest {
            try JSONEncoder().encode(makeRequest()).write(to: URL(fileURLWithPath: saveRequest), options: .atomic)
            return
        }
        var runner = MemoryProfileRun(request: makeRequest(), executable: MemoryProfileRun.currentExecutable)
        if let budget = memoryBudget.flatMap({ MemoryBudget.resolve($0) }) {
            if budget.source != "given" { print("memory budget: \(ByteFormat.human(budget.bytes)), \(budget.source)") }
            if runner.request.schedule == .greedy {
                // Per round: the chunk that fits (--allow-lean-state is not searched here); the
                // profile runs the measured round's.
                try runner.applyGreedyBudget(budget.bytes).description.forEach { print($0) }
                let measured = runner.request.allRounds ? "every round" : "round \(runner.request.round! + 1)"
                print("profiling \(measured) (\(round == nil ? "the run's largest peak" : "as --round asks")) with \(runner.request.chunk.map { "chunks of \($0)" } ?? "whole batches")")
            } else {
                try runner.applyBudget(budget.bytes, allowLeanState: allowLeanState).description.forEach { print($0) }
            }
        }
        for plan in runner.plans { print(MemoryBudget.describe(plan)) }
        let comparison = try runner.run()
        try ReportWriter(directory: out, options: .stamped()).write(comparison)
        print(TerminalSummary(comparison).render())
        for line in runner.plannerCheck(comparison) { print(line) }
        print("reports written to \(out)/: \(ReportWriter.fileNames.joined(separator: ", "))")
    }
}

/// The child half of `profile`: one mode, in this (fresh) process, its profile written as JSON.
struct ProfileModeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile-mode",
        abstract: "Run one mode of a profile request and write its ModeProfile as JSON (used by `profile` and tools/memory-cap.sh).",
        shouldDisplay: false)

    @Option(help: "ProfileRequest JSON written by `profile`.")
    var request: String
    @Option(help: "local or backprop.")
    var mode: String
    @Option(help: "Where to write the ModeProfile JSON.")
    var result: String

    func validate() throws {
        guard MemoryProfileRun.modes.contains(mode) else { throw ValidationError("--mode must be local or backprop") }
    }

    func run() throws {
        let request = try JSONDecoder().decode(ProfileRequest.self, from: Data(contentsOf: URL(fileURLWithPath: request)))
        let profile = try ModeProfiler.run(request, mode: mode)
        try JSONEncoder().encode(profile).write(to: URL(fileURLWithPath: result), options: .atomic)
        print("\(mode): ledger peak \(profile.peak.total) bytes, activation peak \(profile.activationPeak) bytes, "
              + "peak RSS \(profile.process.peakRSS) bytes")
    }
}
