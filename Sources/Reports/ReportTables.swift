import MemoryLedger

/// The contents of one report table: header and rows as strings, and which columns hold text
/// rather than numbers. The terminal and the HTML report render the same contents.
public struct TableContents: Equatable, Sendable {
    public var header: [String]
    public var rows: [[String]]
    /// Columns aligned left besides the first.
    public var leftAligned: Set<Int>

    public init(header: [String], rows: [[String]] = [], leftAligned: Set<Int> = []) {
        self.header = header
        self.rows = rows
        self.leftAligned = leftAligned
    }
}

/// The tables every report shows, built once from a comparison.
public struct ReportTables {
    public var comparison: MemoryComparison

    public init(_ comparison: MemoryComparison) {
        self.comparison = comparison
    }

    /// Categories as rows; per mode: bytes at the peak instant (human and exact) and the
    /// category's own maximum over the run. Categories no mode used are left out.
    public func categories() -> TableContents {
        let modes = comparison.modes
        var table = TableContents(header: ["category"] + modes.flatMap { ["\($0.name) at peak", "bytes", "\($0.name) max"] })
        for category in Category.allCases {
            guard modes.contains(where: { $0.categoryPeaks[category] > 0 || $0.peak.byCategory[category] > 0 }) else { continue }
            table.rows.append([category.description] + modes.flatMap { mode in
                [ByteFormat.human(mode.peak.byCategory[category]), ByteFormat.exact(mode.peak.byCategory[category]),
                 ByteFormat.human(mode.categoryPeaks[category])]
            })
        }
        table.rows.append(["total"] + modes.flatMap { [ByteFormat.human($0.peak.total), ByteFormat.exact($0.peak.total), ""] })
        return table
    }

    /// Phases as rows, each mode's highest live total in that phase. Phases no mode entered are left out.
    public func phases() -> TableContents {
        let modes = comparison.modes
        var table = TableContents(header: ["phase"] + modes.map(\.name))
        for phase in Phase.allCases {
            let totals = modes.map { mode in mode.phasePeaks.first { $0.phase == phase.description }?.total ?? 0 }
            guard totals.contains(where: { $0 > 0 }) else { continue }
            table.rows.append([phase.description] + totals.map(ByteFormat.human))
        }
        return table
    }

    /// The per-layer table of one mode ("-" where the trainer gave no figure).
    public func layers(_ mode: ModeProfile) -> TableContents {
        var table = TableContents(header: ["layer", "name", "params", "head params", "optimizer state", "W_k",
                                           "measured peak", "after update"], leftAligned: [1])
        func optional(_ bytes: Int?) -> String { bytes.map(ByteFormat.human) ?? "-" }
        for row in mode.layers {
            table.rows.append([String(row.index), row.name, ByteFormat.exact(row.params), ByteFormat.exact(row.headParams),
                               ByteFormat.human(row.optimizerStateBytes), optional(row.workingSetBytes),
                               optional(row.measuredPeakBytes), optional(row.survivingBytes)])
        }
        return table
    }

    /// The ledger's figures next to the operating system's, one column per mode.
    public func crossCheck() -> TableContents {
        let modes = comparison.modes
        var table = TableContents(header: ["figure"] + modes.map(\.name))
        func row(_ name: String, _ value: (ModeProfile) -> String) { table.rows.append([name] + modes.map(value)) }
        func optional(_ bytes: Int?) -> String { bytes.map(ByteFormat.human) ?? "-" }
        row("ledger peak") { ByteFormat.human($0.peak.total) }
        row("ledger peak, bytes") { ByteFormat.exact($0.peak.total) }
        row("ledger's own tables") { ByteFormat.human($0.ledgerOwnBytes) }
        row("process peak RSS (VmHWM)") { ByteFormat.human($0.process.peakRSS) }
        row("ru_maxrss") { ByteFormat.human($0.process.maxRSS) }
        row("current RSS") { ByteFormat.human($0.process.currentRSS) }
        row("cgroup peak") { optional($0.process.cgroupPeak) }
        row("RSS before the run") { optional($0.process.startRSS) }
        row("not counted by the ledger") { ByteFormat.human(ReportTables.uncounted($0)) }
        if modes.contains(where: { $0.process.resident != nil }) {
            row("peak RSS - ledger peak, by cause:") { ByteFormat.human($0.process.peakRSS - $0.peak.total) }
            for (name, part) in ReportTables.uncountedParts {
                row("  \(name)") { mode in ReportTables.split(mode).map { ByteFormat.human(part($0)) } ?? "-" }
            }
        }
        row("timeline events (dropped)") { "\(ByteFormat.exact($0.timeline.sourceEventCount)) (\($0.timeline.droppedEvents))" }
        return table
    }

    /// Peak RSS minus the ledger's peak and its own tables: memory the ledger does not see.
    public static func uncounted(_ mode: ModeProfile) -> Int {
        mode.process.peakRSS - mode.peak.total - mode.ledgerOwnBytes
    }

    /// Peak RSS minus the ledger peak, split by what backs the pages (measured when the profile was
    /// captured, after the steps) and, as the remainder, what was resident at the peak but freed
    /// since (allocator slack and buffers outside the ledger that lived only then).
    public struct UncountedSplit: Equatable, Sendable {
        public var codeAndLibraries: Int
        public var mappedShards: Int
        public var otherFiles: Int
        /// Anonymous pages beyond the ledger's live tensors at capture: the Swift runtime's and
        /// Foundation's heap, thread stacks, the BLAS's and oneDNN's own buffers, allocator slack,
        /// the ledger's own tables.
        public var anonymousOutsideLedger: Int
        /// The rest of the gap at the peak: peak RSS - ledger peak minus the four above.
        public var onlyAtThePeak: Int
    }

    public static func split(_ mode: ModeProfile) -> UncountedSplit? {
        guard let r = mode.process.resident, let live = mode.process.ledgerLiveAtCapture else { return nil }
        let anonymous = r.anonymous - live
        let known = r.codeAndLibraries + r.mappedShards + r.otherFiles + anonymous
        return UncountedSplit(codeAndLibraries: r.codeAndLibraries, mappedShards: r.mappedShards, otherFiles: r.otherFiles,
                              anonymousOutsideLedger: anonymous, onlyAtThePeak: mode.process.peakRSS - mode.peak.total - known)
    }

    static let uncountedParts: [(String, (UncountedSplit) -> Int)] = [
        ("code and libraries", { $0.codeAndLibraries }),
        ("mapped shard pages", { $0.mappedShards }),
        ("other mapped files", { $0.otherFiles }),
        ("anonymous, beyond the ledger's tensors", { $0.anonymousOutsideLedger }),
        ("resident at the peak only", { $0.onlyAtThePeak }),
    ]

    /// What the cross-check table means, as sentences for under the table.
    public static let crossCheckNotes = [
        "Not counted by the ledger = peak RSS - ledger peak - ledger's own tables: the Swift runtime and",
        "code, thread stacks, allocator slack, and the page cache of memory-mapped shards.",
        "Peak RSS - ledger peak is split by cause from /proc/self/smaps after the steps: file-backed pages by file,",
        "anonymous pages minus the ledger's live tensors then; \"resident at the peak only\" is the rest (slack and",
        "buffers outside the ledger that lived around the peak; negative when tensors were not yet all touched).",
        "ru_maxrss never resets: for a mode run after another in the same process it can show the earlier peak.",
    ]

    /// The first lines of every report: what was run, and the ratios.
    public func headlines() -> [String] {
        if comparison.isStaged {
            let modes = comparison.modes
            let largest = modes.max { $0.peak.total < $1.peak.total }!
            return ["\(modes.count) stages, one process each: ledger peak " + modes.map { "\($0.name) \(ByteFormat.human($0.peak.total))" }.joined(separator: ", ")
                    + "; largest \(ByteFormat.human(largest.peak.total)) (\(largest.name))",
                    "process peak RSS " + modes.map { "\($0.name) \(ByteFormat.human($0.process.peakRSS))" }.joined(separator: ", ")
                    + ". Each stage's timeline starts at its own first event (the clocks of the processes are not aligned)."]
        }
        if comparison.isSingleMode {
            let run = comparison.local
            return ["\(run.name): ledger peak \(ByteFormat.human(run.peak.total)), activation peak \(ByteFormat.human(run.activationPeak)); "
                    + "process peak RSS \(ByteFormat.human(run.process.peakRSS))",
                    "One mode only: `layerwise profile` runs the same model and batch in local and backprop mode side by side."]
        }
        let local = comparison.local, backprop = comparison.backprop, h = comparison.headline
        let rss = comparison.modes.map { "\($0.name) \(ByteFormat.human($0.process.peakRSS))" }.joined(separator: ", ")
        var lines = ["\(backprop.name) peak / \(local.name) peak = \(ByteFormat.ratio(h.peakRatio))"
                     + " (activations \(ByteFormat.ratio(h.activationRatio))); process peak RSS: \(rss)"]
        for other in comparison.others {
            let ratio = Headline.ratio(other.peak.total, local.peak.total)
            let activations = Headline.ratio(other.activationPeak, local.activationPeak)
            lines.append("\(other.name) peak / \(local.name) peak = \(ByteFormat.ratio(ratio)) (activations \(ByteFormat.ratio(activations)))")
        }
        lines.append(verdict())
        return lines
    }

    /// Which mode needs less, said plainly, with the two forces at the peaks: what local's heads
    /// add (their weights and the optimizer state of every trained tensor beyond backprop's) and
    /// what local's step saves (everything else at the peak: activations, gradients, temporaries).
    public func verdict() -> String {
        let local = comparison.local, backprop = comparison.backprop
        func held(_ mode: ModeProfile) -> Int {
            mode.peak.byCategory[.weights] + mode.peak.byCategory[.frozenWeights] + mode.peak.byCategory[.headWeights]
                + mode.peak.byCategory[.optimizerState]
        }
        let headsAdd = held(local) - held(backprop)
        let stepSaves = (backprop.peak.total - held(backprop)) - (local.peak.total - held(local))
        let activationsSave = backprop.activationPeak - local.activationPeak
        let difference = local.peak.total - backprop.peak.total
        let step = stepSaves >= 0 ? "the step saves \(ByteFormat.human(stepSaves))" : "the step needs \(ByteFormat.human(-stepSaves)) more as well"
        // Under the greedy schedule only one block holds heads and optimizer state: what local
        // holds can be less than backprop's.
        let held = headsAdd >= 0 ? "heads add \(ByteFormat.human(headsAdd)) of weights and optimizer state"
            : "weights, heads and optimizer state take \(ByteFormat.human(-headsAdd)) less"
        let forces = "\(held), \(step) "
            + "(activations alone save \(ByteFormat.human(activationsSave)))"
        if difference > 0 {
            return "\(local.name) mode needs MORE memory than \(backprop.name) for this model (+\(ByteFormat.human(difference))): \(forces)"
        }
        return "\(local.name) mode needs \(ByteFormat.human(-difference)) less than \(backprop.name): \(forces)"
    }

    /// "mlp 3x1024, batch 128, steps: local 10, backprop 10"
    public func runDescription() -> String {
        let steps = comparison.modes.map { "\($0.name) \($0.steps)" }.joined(separator: ", ")
        return "\(comparison.local.model), batch \(comparison.local.batchSize), steps: \(steps)"
    }

    /// "local: ledger peak 9,625,600 bytes, activation peak ..., peak reached in backward of layer 0"
    public func peakLine(_ mode: ModeProfile) -> String {
        "\(mode.name): ledger peak \(ByteFormat.exact(mode.peak.total)) bytes, activation peak \(ByteFormat.exact(mode.activationPeak)) bytes, "
            + "peak reached in \(mode.peak.phase)\(mode.peak.layer.map { " of layer \($0)" } ?? "")"
    }
}
