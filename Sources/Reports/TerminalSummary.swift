import MemoryLedger

/// The terminal summary of a comparison: the headline, the per-category peaks side by side, the
/// per-phase peaks, a per-layer table per mode and the ledger-versus-OS cross-check.
///
/// Human units (one decimal) for reading, exact bytes where a number is the evidence (totals,
/// activations). Pure text: no colours, so it can be piped and diffed.
public struct TerminalSummary {
    public var comparison: MemoryComparison

    public init(_ comparison: MemoryComparison) {
        self.comparison = comparison
    }

    /// The whole summary, ending with a newline.
    public func render() -> String {
        var blocks: [[String]] = [headerLines(), categoryBlock(), phaseBlock()]
        for mode in comparison.modes { blocks.append(layerBlock(mode)) }
        blocks.append(crossCheckBlock())
        blocks.append(CrossCheck.notes)
        return blocks.map { $0.joined(separator: "\n") }.joined(separator: "\n\n") + "\n"
    }

    /// "backprop peak / local peak = 3.41x (activations 9.80x); process peak RSS: local ..., backprop ..."
    public func headline() -> String {
        let h = comparison.headline
        let rss = comparison.modes.map { "\($0.name) \(ByteFormat.human($0.process.peakRSS))" }.joined(separator: ", ")
        return "\(comparison.backprop.name) peak / \(comparison.local.name) peak = \(ByteFormat.ratio(h.peakRatio))"
            + " (activations \(ByteFormat.ratio(h.activationRatio))); process peak RSS: \(rss)"
    }

    func headerLines() -> [String] {
        let local = comparison.local
        let steps = comparison.modes.map { "\($0.name) \($0.steps)" }.joined(separator: ", ")
        var lines = ["Layerwise memory profile: \(local.model), batch \(local.batchSize), steps: \(steps)", headline()]
        for other in comparison.others {
            let ratio = Headline.ratio(other.peak.total, local.peak.total)
            let activations = Headline.ratio(other.activationPeak, local.activationPeak)
            lines.append("\(other.name) peak / \(local.name) peak = \(ByteFormat.ratio(ratio)) (activations \(ByteFormat.ratio(activations)))")
        }
        for mode in comparison.modes {
            lines.append("\(mode.name): ledger peak \(ByteFormat.exact(mode.peak.total)) bytes, activation peak \(ByteFormat.exact(mode.activationPeak)) bytes, "
                         + "peak reached in \(mode.peak.phase)\(mode.peak.layer.map { " of layer \($0)" } ?? "")")
        }
        return lines
    }

    /// Categories as rows; per mode: bytes at the peak instant (human and exact) and the
    /// category's own maximum over the run.
    func categoryBlock() -> [String] {
        var header = ["category"]
        for mode in comparison.modes { header += ["\(mode.name) at peak", "bytes", "\(mode.name) max"] }
        var table = TextTable(header: header)
        for category in Category.allCases {
            // Skip categories no mode ever used: they would only be rows of zeros.
            guard comparison.modes.contains(where: { $0.categoryPeaks[category] > 0 || $0.peak.byCategory[category] > 0 }) else { continue }
            var row = [category.description]
            for mode in comparison.modes {
                row += [ByteFormat.human(mode.peak.byCategory[category]), ByteFormat.exact(mode.peak.byCategory[category]),
                        ByteFormat.human(mode.categoryPeaks[category])]
            }
            table.add(row)
        }
        var total = ["total"]
        for mode in comparison.modes { total += [ByteFormat.human(mode.peak.total), ByteFormat.exact(mode.peak.total), ""] }
        table.add(total)
        return ["Ledger at its peak, by category (max: the category's own highest over the run):"] + table.lines(indent: "  ")
    }

    func phaseBlock() -> [String] {
        var table = TextTable(header: ["phase"] + comparison.modes.map(\.name))
        for phase in Phase.allCases {
            let totals = comparison.modes.map { mode in mode.phasePeaks.first { $0.phase == phase.description }?.total ?? 0 }
            guard totals.contains(where: { $0 > 0 }) else { continue }
            table.add([phase.description] + totals.map(ByteFormat.human))
        }
        return ["Ledger peak by phase:"] + table.lines(indent: "  ")
    }

    func layerBlock(_ mode: ModeProfile) -> [String] {
        let title = "Per layer, \(mode.name):"
        guard !mode.layers.isEmpty else { return [title, "  (no per-layer rows recorded)"] }
        var table = TextTable(header: ["layer", "name", "params", "head params", "optimizer state", "W_k", "measured peak", "after update"],
                              leftAligned: [1])
        func optional(_ bytes: Int?) -> String { bytes.map(ByteFormat.human) ?? "-" }
        for row in mode.layers {
            table.add([String(row.index), row.name, ByteFormat.exact(row.params), ByteFormat.exact(row.headParams),
                       ByteFormat.human(row.optimizerStateBytes), optional(row.workingSetBytes),
                       optional(row.measuredPeakBytes), optional(row.survivingBytes)])
        }
        return [title] + table.lines(indent: "  ")
    }

    /// The ledger's figures next to the operating system's, per mode.
    func crossCheckBlock() -> [String] {
        let modes = comparison.modes
        var table = TextTable(header: ["figure"] + modes.map(\.name))
        func row(_ name: String, _ value: (ModeProfile) -> String) { table.add([name] + modes.map(value)) }
        func optional(_ bytes: Int?) -> String { bytes.map(ByteFormat.human) ?? "-" }
        row("ledger peak") { ByteFormat.human($0.peak.total) }
        row("ledger peak, bytes") { ByteFormat.exact($0.peak.total) }
        row("ledger's own tables") { ByteFormat.human($0.ledgerOwnBytes) }
        row("process peak RSS (VmHWM)") { ByteFormat.human($0.process.peakRSS) }
        row("ru_maxrss") { ByteFormat.human($0.process.maxRSS) }
        row("current RSS") { ByteFormat.human($0.process.currentRSS) }
        row("cgroup peak") { optional($0.process.cgroupPeak) }
        row("RSS before the run") { optional($0.process.startRSS) }
        row("not counted by the ledger") { ByteFormat.human(CrossCheck.uncounted($0)) }
        row("timeline events (dropped)") { "\(ByteFormat.exact($0.timeline.sourceEventCount)) (\($0.timeline.droppedEvents))" }
        return ["Ledger vs OS:"] + table.lines(indent: "  ")
    }
}

/// What the report says about the gap between the ledger and the operating system.
enum CrossCheck {
    /// Peak RSS minus the ledger's peak and its own tables: memory the ledger does not see.
    static func uncounted(_ mode: ModeProfile) -> Int {
        mode.process.peakRSS - mode.peak.total - mode.ledgerOwnBytes
    }

    static let notes = [
        "Not counted by the ledger = peak RSS - ledger peak - ledger's own tables: the Swift runtime and",
        "code, thread stacks, allocator slack, and the page cache of memory-mapped shards.",
        "ru_maxrss never resets: for a mode run after another in the same process it can show the earlier peak.",
    ]
}
