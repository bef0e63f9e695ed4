import Foundation
import Layers
import MemoryLedger
import Reports

/// `--memory-budget`: a byte count the run's predicted ledger peak must fit in.
public enum MemoryBudget {
    /// "predicted ledger peak, local (predsim): 49.9 MiB (52,327,464 bytes) = weights ... + ..."
    public static func describe(_ plan: MemoryPlan) -> String {
        let p = plan.persistent
        var parts = ["weights \(ByteFormat.human(p[.weights]))"]
        if p[.headWeights] > 0 { parts.append("head weights \(ByteFormat.human(p[.headWeights]))") }
        parts += ["optimizer state \(ByteFormat.human(p[.optimizerState]))", "input batch \(ByteFormat.human(p[.input]))"]
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
        plan.loss.isLocal ? "local (\(plan.loss.rawValue))" : "backprop"
    }

    /// Throws `TrainingError.overMemoryBudget` when `spec`'s predicted peak exceeds `budget`,
    /// naming the modes of the same model and batch that would fit (or need less).
    public static func check(_ spec: ModelSpec, batchSize: Int, optimizer: OptimizerSettings, budget: Int) throws {
        let plan = MemoryPlanner.plan(spec, batchSize: batchSize, optimizer: optimizer)
        guard plan.peak > budget else { return }
        let others = MemoryPlanner.alternatives(spec, batchSize: batchSize, optimizer: optimizer).filter { $0.loss != spec.loss }
        let fitting = others.filter { $0.peak <= budget }
        var message = "the \(describe(plan)); it does not fit --memory-budget \(ByteFormat.human(budget)) "
            + "(\(ByteFormat.exact(budget)) bytes), over by \(ByteFormat.human(plan.peak - budget))."
        if !fitting.isEmpty {
            message += " Modes of the same model and batch that fit: "
                + fitting.map { "\(name($0)) \(ByteFormat.human($0.peak))" }.joined(separator: ", ") + "."
        } else if let least = others.first, least.peak < plan.peak {
            message += " No mode fits this batch; the least is \(name(least)) with \(ByteFormat.human(least.peak)); try a smaller --batch-size."
        } else {
            message += " No other mode needs less; try a smaller --batch-size."
        }
        throw TrainingError.overMemoryBudget(message)
    }
}
