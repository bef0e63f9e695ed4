import MemoryLedger

/// `memory.html`: one self-contained page (no network, no scripts, no external CSS or fonts)
/// with the headline, a stacked timeline per mode on one shared scale, and the report tables.
/// Every piece of text that comes from a profile is escaped.
public struct HTMLReport {
    public var comparison: MemoryComparison
    /// Points per mode timeline after downsampling (the peak is always kept).
    public var maxPointsPerMode: Int
    /// Shown in the footer when given.
    public var generatedAt: String?

    public init(_ comparison: MemoryComparison, maxPointsPerMode: Int = 2000, generatedAt: String? = nil) {
        self.comparison = comparison
        self.maxPointsPerMode = maxPointsPerMode
        self.generatedAt = generatedAt
    }

    public func render() -> String {
        let tables = ReportTables(comparison)
        let esc = HTMLText.escape
        let modes = comparison.modes.map { mode -> ModeProfile in
            var copy = mode
            copy.timeline = mode.timeline.downsampled(maxPoints: maxPointsPerMode)
            return copy
        }
        let axis = HTMLReport.axis(for: modes.map(\.timeline.peakTotal).max() ?? 0)

        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(esc("Layerwise memory: " + tables.runDescription()))</title>
        <style>\(HTMLReport.css)</style>
        </head>
        <body>
        <h1>Layerwise memory profile</h1>
        <p class="run">\(esc(tables.runDescription()))</p>

        """
        for line in tables.headlines() { html += "<p class=\"headline\">\(esc(line))</p>\n" }
        for mode in comparison.modes { html += "<p class=\"peakline\">\(esc(tables.peakLine(mode)))</p>\n" }

        html += "<h2>Timeline</h2>\n" + legend()
        html += "<p class=\"note\">All charts share one y-scale. Shaded bands are layers (L0, L1, ...) from the trainer's phase markers; the dashed lines mark each mode's peak.</p>\n"
        for mode in modes {
            html += "<h3>\(esc(mode.name)): peak \(esc(ByteFormat.human(mode.peak.total)))</h3>\n"
            html += TimelineChart(profile: mode, axisMax: axis.max, axisStep: axis.step).svg()
            if mode.timeline.droppedEvents > 0 {
                html += "<p class=\"note\">The ledger's history was full: \(mode.timeline.droppedEvents) later events are not drawn.</p>\n"
            }
        }

        html += "<h2>Ledger at its peak, by category</h2>\n"
        html += "<p class=\"note\">max: the category's own highest live bytes over the run, not necessarily at the peak instant.</p>\n"
        html += table(tables.categories())
        html += "<h2>Ledger peak by phase</h2>\n" + table(tables.phases())
        html += "<h2>Per layer</h2>\n"
        for mode in comparison.modes {
            html += "<h3>\(esc(mode.name))</h3>\n"
            html += mode.layers.isEmpty ? "<p class=\"note\">No per-layer rows recorded.</p>\n" : table(tables.layers(mode))
        }
        html += "<h2>Ledger vs OS</h2>\n" + table(tables.crossCheck())
        html += "<p class=\"note\">\(esc(ReportTables.crossCheckNotes.joined(separator: " ")))</p>\n"
        html += "<footer>schema \(esc(ReportSchema.version))\(generatedAt.map { ", generated " + esc($0) } ?? "")</footer>\n"
        html += "</body>\n</html>\n"
        return html
    }

    private func table(_ contents: TableContents) -> String {
        HTMLText.table(header: contents.header, rows: contents.rows, leftAligned: contents.leftAligned)
    }

    /// Swatches for every category, in stacking order (bottom first).
    private func legend() -> String {
        var out = "<div class=\"legend\">"
        for category in Category.allCases {
            out += "<span><i style=\"background:\(CategoryPalette.color(category))\"></i>\(HTMLText.escape(category.description))</span>"
        }
        return out + "</div>\n"
    }

    /// A y-axis top and grid step for values up to `maxBytes`: at most five steps of 1, 2 or 5
    /// times a binary unit, so the labels read as round numbers in the unit the report prints.
    static func axis(for maxBytes: Int) -> (max: Int, step: Int) {
        guard maxBytes > 0 else { return (1024, 256) }
        let rough = Double(maxBytes) / 5
        var step = 1
        search: for unit in [1, 1 << 10, 1 << 20, 1 << 30, 1 << 40] {
            for multiple in [1, 2, 5, 10, 20, 50, 100, 200, 500] where Double(unit * multiple) >= rough {
                step = unit * multiple
                break search
            }
        }
        let steps = (maxBytes + step - 1) / step
        return (steps * step, step)
    }

    static let css = """
    body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1000px}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}h3{font-size:14px;margin:16px 0 4px}
    .run{color:#555;margin:0 0 12px}.headline{font-size:16px;font-weight:600;margin:4px 0}.peakline{font-family:monospace;margin:2px 0}
    .note{color:#555;font-size:13px}
    table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
    th{background:#f6f6f6}.num{text-align:right;font-variant-numeric:tabular-nums}
    .legend span{display:inline-block;margin:0 14px 4px 0;font-size:13px}.legend i{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-1px}
    svg.timeline{display:block;font-size:11px;font-family:system-ui,sans-serif}svg text.band{fill:#667}svg text.peak{font-weight:600}
    footer{margin-top:30px;color:#888;font-size:12px}
    """
}
