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

    /// "backprop peak / local peak = 3.41x (activations 9.80x); process peak RSS: local ..., backprop ..."
    public func headline() -> String {
        ReportTables(comparison).headlines()[0]
    }

    /// The whole summary, ending with a newline. Blocks are separated by blank lines.
    public func render() -> String {
        let tables = ReportTables(comparison)
        var blocks: [[String]] = []
        blocks.append(["Layerwise memory profile: \(tables.runDescription())"] + tables.headlines()
                      + comparison.modes.map(tables.peakLine))
        blocks.append(block("Ledger at its peak, by category (max: the category's own highest over the run):", tables.categories()))
        blocks.append(block("Ledger peak by phase:", tables.phases()))
        for mode in comparison.modes {
            let title = "Per layer, \(mode.name):"
            blocks.append(mode.layers.isEmpty ? [title, "  (no per-layer rows recorded)"] : block(title, tables.layers(mode)))
        }
        blocks.append(block("Ledger vs OS:", tables.crossCheck()))
        blocks.append(ReportTables.crossCheckNotes)
        return blocks.map { $0.joined(separator: "\n") }.joined(separator: "\n\n") + "\n"
    }

    private func block(_ title: String, _ contents: TableContents) -> [String] {
        [title] + TextTable(contents).lines(indent: "  ")
    }
}
