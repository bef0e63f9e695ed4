import Layers
import Reports
import Tensors

/// A pipelined run's memory plan: which blocks each stage holds, the chunk size, and each
/// stage's predicted ledger peak (`MemoryPlanner.plan(_:stage:)`).
public struct StagedPlan: Sendable {
    public var placement: StagePlacement
    public var chunk: Int?
    /// Per stage, in order.
    public var plans: [MemoryPlan]
    /// The stage with the largest predicted peak (the first of equals).
    public var largest: MemoryPlan { plans.max { $0.peak < $1.peak }! }

    /// One line per stage: its blocks, its predicted peak and what it is made of.
    public var lines: [String] {
        plans.enumerated().map { s, plan in
            let range = placement.blocks[s]
            let blocks = range.count > 1 ? "blocks \(range.lowerBound + 1)-\(range.upperBound)" : "block \(range.lowerBound + 1)"
            let p = plan.persistent
            var parts = ["weights \(ByteFormat.human(p[.weights]))", "heads \(ByteFormat.human(p[.headWeights]))",
                         "optimizer state \(ByteFormat.human(p[.optimizerState]))"]
            if p[.workspace] > 0 { parts.append("conv scratch \(ByteFormat.human(p[.workspace]))") }
            parts.append("\(s == 0 ? "input batch" : "received hand-off") \(ByteFormat.human(p[.input]))")
            if p[.activations] > 0 { parts.append("send ring \(ByteFormat.human(p[.activations]))") }
            parts.append("largest working set \(ByteFormat.human(plan.largestWorkingSet ?? 0))")
            return "stage \(s + 1)/\(plans.count) (\(blocks)\(s == plans.count - 1 ? " + output" : "")): predicted ledger peak "
                + "\(ByteFormat.human(plan.peak)) (\(ByteFormat.exact(plan.peak)) bytes) = " + parts.joined(separator: " + ")
        }
    }
}

/// Places consecutive blocks on pipeline stages from the shape table's predictions.
public enum StagePlanner {
    /// The placement of the model's blocks on `stages` stages whose largest predicted stage peak
    /// is the smallest of all placements of consecutive blocks (the first found of equals).
    public static func balanced(_ table: ShapeTable, stages: Int, batchSize: Int, chunk: Int? = nil,
                                optimizer: OptimizerSettings = OptimizerSettings(), inFlight: Int = 1) -> StagedPlan {
        let n = table.hiddenLayers.count
        precondition(stages >= 1 && stages <= n, "\(stages) stages for \(n) blocks")
        var plans: [Range<Int>: MemoryPlan] = [:]
        func plan(_ r: Range<Int>) -> MemoryPlan {
            if let p = plans[r] { return p }
            let p = MemoryPlanner.plan(table, batchSize: batchSize, chunk: chunk, optimizer: optimizer, stage: r, inFlight: inFlight)
            plans[r] = p
            return p
        }
        // best[k][j]: the smallest largest peak of blocks 0..<j on k stages, and the last cut.
        var best = Array(repeating: Array(repeating: (peak: Int.max, cut: 0), count: n + 1), count: stages + 1)
        best[0][0] = (0, 0)
        for k in 1...stages {
            for j in k...n {
                for i in (k - 1)..<j where best[k - 1][i].peak != Int.max {
                    let peak = max(best[k - 1][i].peak, plan(i..<j).peak)
                    if peak < best[k][j].peak { best[k][j] = (peak, i) }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var j = n
        for k in stride(from: stages, to: 0, by: -1) {
            let i = best[k][j].cut
            ranges.insert(i..<j, at: 0)
            j = i
        }
        return StagedPlan(placement: StagePlacement(ranges: ranges), chunk: chunk, plans: ranges.map(plan))
    }

    /// The plan for a pipelined run under `--memory-budget`: `stages` stages (nil: the fewest
    /// that fit), balanced, whole batches or the largest chunk (halving from the batch) whose
    /// largest stage fits the budget with `overhead`; `chunk` given: only that.
    /// - Throws: `TrainingError.overMemoryBudget` with the smallest plan's numbers.
    public static func choose(_ table: ShapeTable, stages: Int?, batchSize: Int, chunk: Int?, optimizer: OptimizerSettings,
                              inFlight: Int = 1, budget: Int, overhead: ProcessOverhead) throws -> StagedPlan {
        var chunks: [Int?] = [chunk]
        if chunk == nil {
            var c = batchSize
            while c > 1 {
                c = (c + 1) / 2
                chunks.append(c)
            }
        }
        let counts = stages.map { [$0] } ?? Array(1...table.hiddenLayers.count)
        var smallest: StagedPlan?
        for count in counts {
            for c in chunks {
                let plan = balanced(table, stages: count, batchSize: batchSize, chunk: c, optimizer: optimizer, inFlight: inFlight)
                if plan.largest.peak + overhead.bytes <= budget { return plan }
                if smallest.map({ plan.largest.peak < $0.largest.peak }) ?? true { smallest = plan }
            }
        }
        let least = smallest!
        throw TrainingError.overMemoryBudget(
            "no placement of \(table.spec.description) on \(stages.map { "\($0) stages" } ?? "up to \(table.hiddenLayers.count) stages") fits --memory-budget \(ByteFormat.human(budget)) per stage: "
            + "the smallest largest stage, \(least.placement.stageCount) stages\(least.chunk.map { ", chunks of \($0)" } ?? ""), predicts \(ByteFormat.human(least.largest.peak)) of ledger "
            + "+ \(ByteFormat.human(overhead.bytes)) \(overhead.what). Try more stages (more processes) or a smaller --batch-size.")
    }
}
