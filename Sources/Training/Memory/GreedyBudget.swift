import Layers
import MemoryLedger
import Reports
import Shards
import Tensors

/// What a hand-off cache would hold, for the planner: the training records and the precision.
public struct HandOffCacheOption: Sendable, Equatable {
    public var records: Int
    public var precision: HandOffCacheInfo.Precision

    public init(records: Int, precision: HandOffCacheInfo.Precision = .fp32) {
        self.records = records
        self.precision = precision
    }

    /// Bytes on disk of round k's cache, at most: every record in its own zstd frame stored raw
    /// (zstd never expands a block past its raw size plus 3 header bytes), with the frame's
    /// header and checksum (at most 18 bytes) and the record's 24-byte index entry, plus the
    /// header and trailer of each 1 GiB shard. Compression of float hand-offs usually saves
    /// little, so this is close to what is written.
    public func diskBytes(_ table: ShapeTable, round k: Int) -> Int {
        let record = table.handOffCacheRecordBytes(round: k, valueBytes: precision == .fp32 ? 4 : 2)
        let perShard = max(1, (1 << 30) / record)
        let shards = (records + perShard - 1) / perShard
        return records * (record + 3 * ((record + 131_071) / 131_072) + 18 + 24) + shards * 1024
    }
}

/// One greedy round as the planner chose it: the chunk, cache or recompute, and their costs.
public struct GreedyRoundChoice: Sendable, Equatable {
    /// The round's plan (its `round`, `chunk` and `cached`).
    public var plan: MemoryPlan
    /// Bytes on disk of the cache the round reads, at most (0: it runs the prefix).
    public var cacheBytes: Int
    /// Multiply-adds x 2 of one step as chosen, and of the prefix forward a cache saves each
    /// step (0 in round 1).
    public var stepFLOPs: Double
    public var prefixFLOPs: Double
    /// Why a round with a prefix recomputes it (nil: it reads a cache, or is round 1).
    public var recomputeReason: String?

    public var round: Int { plan.round ?? 0 }
    public var cached: Bool { plan.cached == true }
}

/// The greedy schedule's plan under `--memory-budget` and `--disk-budget`: per round, the
/// fastest setting (fewest step FLOPs: a cache rather than the prefix, whole batches rather
/// than chunks) whose ledger peak plus the process overhead fits the memory budget and whose
/// cache fits the disk budget. One cache is on disk at a time (a round deletes the one before).
public struct GreedyBudgetPlan: Sendable {
    public var rounds: [GreedyRoundChoice]
    public var budget: Int?
    public var diskBudget: Int?
    public var overhead: ProcessOverhead
    /// The cache the plan was made for (nil: no `--cache-handoffs`).
    public var cache: HandOffCacheOption?

    /// The round with the largest predicted peak: the run's peak.
    public var largest: GreedyRoundChoice { rounds.max { $0.plan.peak < $1.plan.peak }! }
    /// Rounds (0-based) that read a cache.
    public var cachedRounds: [Int] { rounds.filter(\.cached).map(\.round) }
    /// Each round's chunk (nil: whole batches).
    public var roundChunks: [Int?] { rounds.map(\.plan.chunk) }
    /// The largest cache on disk at once.
    public var diskPeak: Int { rounds.map(\.cacheBytes).max() ?? 0 }

    /// Lines for the user: the budgets, then one line per round, then the run's peak.
    public var description: [String] {
        var head = "greedy plan"
        var limits: [String] = []
        if let budget { limits.append("--memory-budget \(ByteFormat.human(budget))") }
        if let diskBudget { limits.append("--disk-budget \(ByteFormat.human(diskBudget))") }
        if !limits.isEmpty { head += " for " + limits.joined(separator: ", ") }
        head += ": per round, the fewest step FLOPs that fit" + (cache == nil ? " (no --cache-handoffs: every round runs its prefix)" : "")
        var lines = [head]
        for r in rounds {
            let settings = r.plan.chunk.map { "chunks of \($0)" } ?? "whole batches"
            var line = "  round \(r.round + 1): \(settings), "
            if r.cached {
                line += "reads its hand-off cache (\(cache!.precision.rawValue), at most \(ByteFormat.human(r.cacheBytes)) on disk)"
            } else if r.round == 0 {
                line += "reads the images"
            } else {
                line += "runs its frozen prefix" + (r.recomputeReason.map { " (\($0))" } ?? "")
            }
            line += ": ledger peak \(ByteFormat.human(r.plan.peak)) (\(ByteFormat.exact(r.plan.peak)) bytes)"
            lines.append(line)
        }
        let top = largest
        var last = "  the run's peak is round \(top.round + 1)'s: \(ByteFormat.human(top.plan.peak))"
        if budget != nil {
            last += " + \(ByteFormat.human(overhead.bytes)) \(overhead.what) = \(ByteFormat.human(top.plan.peak + overhead.bytes)) of \(ByteFormat.human(budget!))"
        }
        if cache != nil { last += "; the largest cache on disk: \(ByteFormat.human(diskPeak))" }
        lines.append(last)
        return lines
    }
}

extension MemoryBudget {
    /// Chooses every greedy round's chunk and, with a `cache`, whether it reads a hand-off cache
    /// (see `GreedyBudgetPlan`). With `chunk` given only that chunk is checked; with no budget
    /// every setting fits and the fastest is taken. Throws `TrainingError.overMemoryBudget`
    /// naming the first round that nothing fits, with its smallest peak.
    public static func chooseGreedy(_ spec: ModelSpec, batchSize: Int, chunk: Int? = nil, optimizer: OptimizerSettings,
                                    keepsSimOutput: Bool = false,
                                    engine: ConvEngine = .default, budget: Int?, diskBudget: Int?, cache: HandOffCacheOption?,
                                    overhead: ProcessOverhead) throws -> GreedyBudgetPlan {
        var table = ShapeTable(spec: spec, engine: engine)
        table.keepsSimOutput = keepsSimOutput
        var chunks: [Int?] = [chunk]
        if chunk == nil {
            var c = batchSize
            while c > 1 {
                c = (c + 1) / 2
                chunks.append(c)
            }
        }
        var rounds: [GreedyRoundChoice] = []
        for k in 0..<table.greedyRounds {
            var reason: String?
            var cacheBytes = 0
            var options = [false]
            if k > 0, let cache {
                cacheBytes = cache.diskBytes(table, round: k)
                if let diskBudget, cacheBytes > diskBudget {
                    reason = "its cache, at most \(ByteFormat.human(cacheBytes)), is over --disk-budget \(ByteFormat.human(diskBudget))"
                } else {
                    options = [true, false]
                }
            } else if k > 0 {
                reason = "no --cache-handoffs"
            }
            var candidates: [GreedyRoundChoice] = []
            for cached in options {
                for c in chunks {
                    let plan = MemoryPlanner.plan(table, batchSize: batchSize, chunk: c, optimizer: optimizer, round: k, cached: cached)
                    candidates.append(GreedyRoundChoice(plan: plan, cacheBytes: cached ? cacheBytes : 0,
                                                        stepFLOPs: table.greedyStepFLOPs(round: k, batch: batchSize, chunk: c, cached: cached),
                                                        prefixFLOPs: table.greedyPrefixFLOPs(round: k, batch: batchSize, chunk: c),
                                                        recomputeReason: cached ? nil : reason))
                }
            }
            let fitting = candidates.filter { budget == nil || $0.plan.peak + overhead.bytes <= budget! }
            // Fewest FLOPs; among equals (chunk sizes cost the same FLOPs) the largest chunk.
            guard var best = fitting.min(by: { a, b in
                a.stepFLOPs != b.stepFLOPs ? a.stepFLOPs < b.stepFLOPs : (a.plan.chunk ?? Int.max) > (b.plan.chunk ?? Int.max)
            }) else {
                let least = candidates.min { $0.plan.peak < $1.plan.peak }!
                throw TrainingError.overMemoryBudget("greedy round \(k + 1) of \(table.greedyRounds) fits no setting: its smallest is the \(describe(least.plan)); "
                    + "with \(ByteFormat.human(overhead.bytes)) \(overhead.what) it needs \(ByteFormat.human(least.plan.peak + overhead.bytes)), "
                    + "over --memory-budget \(ByteFormat.human(budget!)) (\(ByteFormat.exact(budget!)) bytes). Try a smaller --batch-size or a narrower model.")
            }
            if !best.cached && k > 0 && reason == nil && cache != nil {
                best.recomputeReason = "a cached step does not fit the memory budget"
            }
            rounds.append(best)
        }
        return GreedyBudgetPlan(rounds: rounds, budget: budget, diskBudget: diskBudget, overhead: overhead, cache: cache)
    }
}
