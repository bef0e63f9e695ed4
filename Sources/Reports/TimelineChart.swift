import MemoryLedger

/// An inline SVG chart of one mode's timeline: live bytes stacked by category (fixed colours,
/// `Category` order from the bottom), layer bands behind, the peak marked with lines and a label.
///
/// The y-axis maximum is given from outside so that charts of several modes share one scale.
/// Memory changes at events and holds until the next, so areas are drawn as steps.
struct TimelineChart {
    var profile: ModeProfile
    /// Top of the y-axis, bytes (shared by every chart in the report).
    var axisMax: Int
    /// Spacing of y-axis grid lines, bytes.
    var axisStep: Int
    var width = 960.0
    var height = 300.0

    private let left = 78.0, right = 16.0, top = 28.0, bottom = 34.0
    private var plotWidth: Double { width - left - right }
    private var plotHeight: Double { height - top - bottom }

    init(profile: ModeProfile, axisMax: Int, axisStep: Int) {
        self.profile = profile
        self.axisMax = max(axisMax, 1)
        self.axisStep = max(axisStep, 1)
    }

    /// The `<svg>` element (no XML namespace: inline SVG in HTML5 does not need one).
    func svg() -> String {
        let timeline = profile.timeline
        var out = "<svg class=\"timeline\" width=\"\(f(width))\" height=\"\(f(height))\" viewBox=\"0 0 \(f(width)) \(f(height))\" role=\"img\" aria-label=\"\(HTMLText.escape("memory timeline of \(profile.name)"))\">\n"
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"#ffffff\" stroke=\"#999999\"/>\n"
        out += bands()
        out += grid()
        if timeline.count > 0 {
            out += areas()
            out += roundMarks()
            out += peakMark()
        } else {
            out += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\">no events recorded</text>\n"
        }
        out += "</svg>\n"
        return out
    }

    // MARK: scales

    private func f(_ value: Double) -> String { ByteFormat.fixed(value, 1) }

    /// x of a time on the ledger's clock. A timeline whose events share one instant spreads its
    /// points evenly instead of piling them on one pixel.
    private func x(_ time: UInt64) -> Double {
        let timeline = profile.timeline
        guard timeline.durationNanos > 0 else { return left }
        return left + Double(time - timeline.startNanos) / Double(timeline.durationNanos) * plotWidth
    }

    private func xs() -> [Double] {
        let timeline = profile.timeline
        if timeline.durationNanos == 0 && timeline.count > 1 {
            return (0..<timeline.count).map { left + Double($0) / Double(timeline.count - 1) * plotWidth }
        }
        return timeline.timeNanos.map(x)
    }

    private func y(_ bytes: Int) -> Double {
        top + plotHeight - Double(bytes) / Double(axisMax) * plotHeight
    }

    // MARK: layers

    /// Consecutive spans of the same layer merged into one band, shaded by the layer's parity.
    private func bands() -> String {
        var merged: [(layer: Int, start: UInt64, end: UInt64, phases: [String])] = []
        for span in profile.timeline.spans {
            guard let layer = span.layer else { continue }
            if let last = merged.last, last.layer == layer, last.end == span.startNanos {
                merged[merged.count - 1].end = span.endNanos
                if !last.phases.contains(span.phase) { merged[merged.count - 1].phases.append(span.phase) }
            } else {
                merged.append((layer, span.startNanos, span.endNanos, [span.phase]))
            }
        }
        var out = "<g class=\"bands\">\n"
        for band in merged {
            let x0 = x(band.start), x1 = x(band.end)
            let shade = band.layer % 2 == 0 ? "#eef1f5" : "#dde3ea"
            let tip = HTMLText.escape("layer \(band.layer): \(band.phases.joined(separator: ", "))")
            out += "<rect x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(max(x1 - x0, 0)))\" height=\"\(f(plotHeight))\" fill=\"\(shade)\"><title>\(tip)</title></rect>\n"
            // Label only bands wide enough to hold the text.
            if x1 - x0 >= 18 {
                out += "<text class=\"band\" x=\"\(f((x0 + x1) / 2))\" y=\"\(f(top + 12))\" text-anchor=\"middle\">L\(band.layer)</text>\n"
            }
        }
        return out + "</g>\n"
    }

    // MARK: axes

    private func grid() -> String {
        var out = "<g class=\"grid\">\n"
        var value = 0
        while value <= axisMax {
            let yy = y(value)
            out += "<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(yy))\" stroke=\"#cccccc\" stroke-width=\"0.5\"/>\n"
            out += "<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\">\(HTMLText.escape(ByteFormat.human(value)))</text>\n"
            value += axisStep
        }
        let duration = profile.timeline.durationNanos
        let unit = DurationFormat.unit(forSpan: duration)
        for i in 0...4 {
            let xx = left + Double(i) / 4 * plotWidth
            let anchor = i == 0 ? "start" : (i == 4 ? "end" : "middle")
            let label = DurationFormat.format(Double(duration) * Double(i) / 4, unit: unit)
            out += "<text x=\"\(f(xx))\" y=\"\(f(top + plotHeight + 16))\" text-anchor=\"\(anchor)\">\(label)</text>\n"
        }
        return out + "</g>\n"
    }

    // MARK: data

    /// One polygon per category between the running sums below and including it.
    private func areas() -> String {
        let timeline = profile.timeline
        let positions = xs()
        var below = [Int](repeating: 0, count: timeline.count)
        var out = "<g class=\"areas\">\n"
        for category in Category.allCases {
            let series = timeline.categories[category]
            guard series.contains(where: { $0 != 0 }) else { continue }
            let above = zip(below, series).map { $0 + $1 }
            var upper: [String] = [], lower: [String] = []
            for i in 0..<timeline.count {
                let next = i + 1 < timeline.count ? positions[i + 1] : positions[i]
                upper += ["\(f(positions[i])),\(f(y(above[i])))", "\(f(next)),\(f(y(above[i])))"]
                lower += ["\(f(positions[i])),\(f(y(below[i])))", "\(f(next)),\(f(y(below[i])))"]
            }
            let points = (upper + lower.reversed()).joined(separator: " ")
            out += "<polygon fill=\"\(CategoryPalette.color(category))\" points=\"\(points)\"><title>\(category.description)</title></polygon>\n"
            below = above
        }
        return out + "</g>\n"
    }

    /// Greedy rounds: a line where each begins, labelled at the foot of the plot.
    private func roundMarks() -> String {
        let starts = profile.timeline.spans.filter { $0.phase == Phase.round.description }
        guard !starts.isEmpty else { return "" }
        var out = "<g class=\"rounds\">\n"
        for span in starts {
            let xx = x(span.startNanos)
            let label = HTMLText.escape("round \((span.layer ?? 0) + 1)")
            out += "<line x1=\"\(f(xx))\" y1=\"\(f(top))\" x2=\"\(f(xx))\" y2=\"\(f(top + plotHeight))\" stroke=\"#7a3e9d\" stroke-width=\"1.2\"/>\n"
            out += "<text class=\"round\" x=\"\(f(xx + 3))\" y=\"\(f(top + plotHeight - 4))\" fill=\"#7a3e9d\">\(label)</text>\n"
        }
        return out + "</g>\n"
    }

    private func peakMark() -> String {
        let timeline = profile.timeline
        guard let index = timeline.peakIndex else { return "" }
        let xx = xs()[index], yy = y(timeline.total[index])
        let peak = timeline.total[index]
        var where_ = ""
        if let span = timeline.spans.last(where: { $0.startNanos <= timeline.timeNanos[index] }) {
            where_ = " in \(span.phase)" + (span.layer.map { " of layer \($0)" } ?? "")
        }
        let label = HTMLText.escape("peak \(ByteFormat.human(peak)) (\(ByteFormat.exact(peak)) B)\(where_)")
        let anchor = xx > left + plotWidth / 2 ? "end" : "start"
        let dx = anchor == "end" ? -4.0 : 4.0
        return "<g class=\"peak\">\n"
            + "<line x1=\"\(f(xx))\" y1=\"\(f(top))\" x2=\"\(f(xx))\" y2=\"\(f(top + plotHeight))\" stroke=\"#000000\" stroke-dasharray=\"4 3\"/>\n"
            + "<line x1=\"\(f(left))\" y1=\"\(f(yy))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(yy))\" stroke=\"#000000\" stroke-dasharray=\"2 3\" stroke-width=\"0.8\"/>\n"
            + "<text class=\"peak\" x=\"\(f(xx + dx))\" y=\"\(f(top - 8))\" text-anchor=\"\(anchor)\">\(label)</text>\n"
            + "</g>\n"
    }
}
