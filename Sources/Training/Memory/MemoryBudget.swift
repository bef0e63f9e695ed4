import Foundation
import Tensors
import Layers
import MemoryLedger
import Reports

/// `--memory-budget`: a byte count the run's predicted ledger peak must fit in.
public enum MemoryBudget {
    /// "predicted ledger peak, local (predsim): 49.9 MiB (52,327,464 bytes) = weights ... + ..."
    public static func describe(_ plan: MemoryPlan) -> String {
        let p = plan.persistent
        var parts = ["weights \(ByteFormat.human(p[.weights]))"]
        if p[.frozenWeights] > 0 { parts.append("frozen weights \(ByteFormat.human(p[.frozenWeights]))") }
        if p[.headWeights] > 0 { parts.append("head weights \(ByteFormat.human(p[.headWeights]))") }
        parts.append("optimizer state \(ByteFormat.human(p[.optimizerState]))")
        if p[.workspace] > 0 { parts.append("conv scratch \(ByteFormat.human(p[.workspace]))") }
        parts.append("\(plan.cached == true ? "hand-off" : "input") batch \(ByteFormat.human(p[.input]))")
        if let w = plan.largestWorkingSet {
            parts.append("largest working set W_k \(ByteFormat.human(w))")
        } else {
            parts.append("step transients \(ByteFormat.human(plan.peakTransient))")
        }
        return "predicted ledger peak, \(name(plan)), batch \(plan.batchSize): \(ByteFormat.human(plan.peak)) "
            + "(\(ByteFormat.exact(plan.peak)) bytes) = " + parts.joined(separator: " + ")
    }

    /// "local (predsim)" or "backprop".
    public static func name(_ plan: MemoryPlan) -> String {
        let round = plan.round.map { ", greedy round \($0 + 1) of \(plan.rounds ?? 0)\(plan.cached == true ? " from the hand-off cache" : "")" } ?? ""
        return plan.loss.isLocal ? "local (\(plan.loss.rawValue)\(plan.chunk.map { ", chunks of \($0)" } ?? "")\(round))" : "backprop"
    }

    /// The settings that change memory but not the mathematics (whole batches or chunks of N),
    /// searched for the fastest whose predicted ledger peak plus `overhead` fits `budget`:
    /// whole batches if they fit, else the largest chunk that does (fewer, larger GEMMs). With
    /// `chunk` given, only that setting is checked. Backprop has nothing to choose: it is checked.
    ///
    /// `allowLeanState` (`--allow-lean-state`) lets it also store the optimizer's moments in a
    /// leaner format than `optimizer.stateFormat` (bf16, then int8): it takes the setting with
    /// the fewest FLOPs that fits, and of equal FLOPs the format closest to the one asked for, so
    /// whole batches with bf16 moments come before chunks with fp32 ones. Without it the state
    /// format is never changed.
    ///
    /// Whole batches come first with conv sim heads that keep their output (`SimOutput.keep`:
    /// one sim-head conv forward less a step), then recomputing it, unless `simOutput` fixes it;
    /// chunked steps always recompute.
    ///
    /// Where the convolutions would use Winograd (`ConvEngine.dnnlWinograd` and the spec allowing
    /// it), whole batches are tried with Winograd (s kept, then recomputed), then with oneDNN's
    /// direct convolutions, and each chunk size likewise: Winograd recomputing s measured faster
    /// than direct keeping it (vgg8b predsim, `results/vs-pytorch.md`: 26.4 against 22.4
    /// samples/s), and its scratch is given up before the batch is split.
    ///
    /// Throws `TrainingError.overMemoryBudget` when nothing fits, with the smallest achievable
    /// peak and what dominates it.
    public static func choose(_ spec: ModelSpec, batchSize: Int, chunk: Int? = nil, optimizer: OptimizerSettings,
                              allowLeanState: Bool = false, simOutput: SimOutput? = nil,
                              engine: ConvEngine = .default, budget: Int, overhead: ProcessOverhead) throws -> BudgetPlan {
        let table = ShapeTable(spec: spec, engine: engine)
        let keeps: [Bool] = !table.hasKeepableSimOutput ? [false] : simOutput.map { [$0 == .keep] } ?? [true, false]
        let winograds = table.engine == .dnnlWinograd ? [true, false] : [spec.winograd]
        let wholeBatches = chunk.map { $0 >= batchSize } ?? true
        var candidates: [(chunk: Int?, keep: Bool, winograd: Bool)] = []
        for winograd in winograds {
            candidates += wholeBatches ? keeps.map { (chunk, $0, winograd) } : [(chunk, false, winograd)]
        }
        if chunk == nil && spec.loss.isLocal {
            var c = batchSize
            while c > 1 {
                c = (c + 1) / 2
                candidates += winograds.map { (c, false, $0) }
            }
        }
        let whole = table.stepFLOPs(batch: batchSize)
        let formats = allowLeanState ? optimizer.stateFormat.thisAndLeaner : [optimizer.stateFormat]
        var smallest: BudgetPlan?
        for candidate in candidates {
            var s = spec
            s.winograd = candidate.winograd
            var t = ShapeTable(spec: s, engine: engine)
            t.keepsSimOutput = candidate.keep
            for format in formats {
                var settings = optimizer
                settings.stateFormat = format
                let plan = MemoryPlanner.plan(t, batchSize: batchSize, chunk: candidate.chunk, optimizer: settings)
                var choice = BudgetPlan(plan: plan, budget: budget, overhead: overhead,
                                        slowdown: t.stepFLOPs(batch: batchSize, chunk: candidate.chunk) / whole,
                                        optimizer: settings, requestedStateFormat: optimizer.stateFormat)
                choice.keepsSimOutput = candidate.keep
                choice.winograd = candidate.winograd
                choice.gaveUpWinograd = spec.winograd && !candidate.winograd
                if choice.total <= budget { return choice }
                if smallest.map({ choice.plan.peak < $0.plan.peak }) ?? true { smallest = choice }
            }
        }
        let least = smallest!
        let p = least.plan.persistent
        let fixed = p[.weights] + p[.headWeights] + p[.optimizerState]
        var message = "the \(describe(least.plan)); with \(ByteFormat.human(overhead.bytes)) \(overhead.what) "
            + "it needs \(ByteFormat.human(least.total)), over --memory-budget \(ByteFormat.human(budget)) (\(ByteFormat.exact(budget)) bytes)."
        if spec.loss.isLocal && chunk == nil {
            let state = least.optimizer.stateFormat == optimizer.stateFormat ? "" : " (\(least.optimizer.stateFormat) moments)"
            message += " Weights, heads and \(optimizer.kind == .adam ? "Adam" : "optimizer") state\(state) are \(ByteFormat.human(fixed)); "
                + "no chunk size goes below \(ByteFormat.human(least.plan.peak)) of ledger\(least.plan.chunk.map { " (chunk \($0))" } ?? "")."
                + (allowLeanState || optimizer.stateFormat == .int8 ? "" : " --allow-lean-state lets the planner store the optimizer's moments in bf16 or 8 bits.")
                + " Try a smaller --batch-size or a narrower model."
        } else if !spec.loss.isLocal {
            let fitting = MemoryPlanner.alternatives(spec, batchSize: batchSize, optimizer: optimizer, engine: engine)
                .filter { $0.loss.isLocal && $0.peak + overhead.bytes <= budget }
            if !fitting.isEmpty {
                message += " Local losses of the same model and batch that fit: " + fitting.map { "\(name($0)) \(ByteFormat.human($0.peak))" }.joined(separator: ", ") + "."
            } else {
                message += " Try a smaller --batch-size."
            }
        } else {
            message += " Leave out --chunk to let the planner choose one, or try a smaller --batch-size."
        }
        throw TrainingError.overMemoryBudget(message)
    }
}

/// Bytes a process holds beyond the planner's ledger peak, by command: code and libraries, the
/// BLAS's and oneDNN's own buffers, allocator slack, the loader's shard blocks and batch slots and,
/// for `train`, the test pass. The planner adds it to the predicted peak before comparing with a
/// budget. Measured with `tools/memory-overhead.sh` (release build, Fashion-MNIST, batch 128, one
/// run on a 2-core AMD EPYC): peak RSS above the prediction was
///
///     profile-mode   mlp local 47.3, backprop 45.0 MiB;  vgg8b --chunk 16 local 65.5, backprop 64.1 MiB
///     train          mlp predsim 73.1, backprop 72.3 MiB; vgg8b --chunk 16 predsim 87.0, backprop 85.5 MiB
///
/// and the figures below are the largest of each command rounded up by about a tenth.
public struct ProcessOverhead: Sendable, Equatable, Codable {
    public var bytes: Int
    /// "of process overhead (train: ...)", as the plan prints it after the size.
    public var what: String

    public init(bytes: Int, what: String) {
        self.bytes = bytes
        self.what = what
    }

    /// `layerwise profile-mode` (each mode of `profile`): generated or shard inputs, no test pass.
    public static let profile = ProcessOverhead(bytes: 72 << 20, what: "of process overhead (profile, measured: code, libraries, BLAS and oneDNN buffers, loader)")
    /// `layerwise train`: the loader's shard blocks and workers, the test pass.
    public static let train = ProcessOverhead(bytes: 96 << 20, what: "of process overhead (train, measured: code, libraries, BLAS and oneDNN buffers, loader, test pass)")
}

/// The settings `MemoryBudget.choose` picked, and what they cost.
public struct BudgetPlan: Sendable {
    public var plan: MemoryPlan
    public var budget: Int
    public var overhead: ProcessOverhead
    /// Expected step time against whole batches, from the step's FLOPs (`ShapeTable.stepFLOPs`).
    public var slowdown: Double
    /// The optimizer settings planned, with the state format chosen (`--allow-lean-state`).
    public var optimizer: OptimizerSettings
    /// The state format the user asked for.
    public var requestedStateFormat: OptimizerStateFormat
    /// Whether the conv sim heads keep their output (`SimOutput.keep`) in this plan.
    public var keepsSimOutput = false
    /// `ModelSpec.winograd` in this plan.
    public var winograd = true
    /// Whether the plan gave up the Winograd convolutions the spec allowed.
    public var gaveUpWinograd = false
    /// Predicted ledger peak plus the process overhead.
    public var total: Int { plan.peak + overhead.bytes }

    /// Lines for the user: the settings, the predicted peak by category, the expected slowdown.
    public var description: [String] {
        let settings = plan.loss.isLocal ? (plan.chunk.map { "local steps in chunks of \($0)" } ?? "whole-batch local steps") : "backprop"
        var lines = ["memory plan for --memory-budget \(ByteFormat.human(budget)): \(settings), batch \(plan.batchSize)"]
        lines.append("  predicted ledger peak \(ByteFormat.human(plan.peak)) (\(ByteFormat.exact(plan.peak)) bytes) = "
                     + Category.allCases.filter { plan.peakBreakdown[$0] > 0 }
                        .map { "\($0) \(ByteFormat.human(plan.peakBreakdown[$0]))" }.joined(separator: " + "))
        lines.append("  + \(ByteFormat.human(overhead.bytes)) \(overhead.what) = \(ByteFormat.human(total)) of \(ByteFormat.human(budget))")
        if keepsSimOutput {
            lines.append(String(format: "  sim heads keep their conv output for the backward (--sim-output keep): %.2fx the FLOPs of recomputing it", slowdown))
        }
        if gaveUpWinograd {
            lines.append("  convolutions direct (oneDNN): Winograd's larger scratch does not fit with these settings")
        }
        if optimizer.stateFormat != requestedStateFormat {
            lines.append("  optimizer state \(optimizer.stateFormat) (--allow-lean-state): \(requestedStateFormat) moments do not fit with fewer FLOPs")
        }
        if let chunk = plan.chunk {
            lines.append(String(format: "  expected step time: %.2fx whole batches (FLOPs of the recomputing passes; chunks of %d run smaller GEMMs on top)", slowdown, chunk))
        }
        return lines
    }
}
