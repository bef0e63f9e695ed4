import Foundation
import Layers
import Tensors

/// `layerwise bench train --breakdown`: the timed steps' wall time by block and section
/// (`StepProfiler`), with GFLOP/s for every convolution pass.
public struct TrainingBreakdown: Codable, Sendable {
    public struct Row: Codable, Sendable {
        /// The block's index, or "output", "loader", "step".
        public var layer: String
        public var section: String
        public var millisecondsPerStep: Double
        public var callsPerStep: Double
        /// Convolution passes: their rate (multiply-adds x 2 per second / 1e9).
        public var gflops: Double?
    }

    public var rows: [Row]
    /// Wall time of one step, loading included.
    public var millisecondsPerStep: Double

    /// The table of `StepProfiler.entries` over `steps` steps that took `seconds` in all. Each
    /// block's "other" is its total minus its named sections (elementwise loops, the sim target,
    /// tensor allocation, ...); the step's "other" is what no block, the output layer or the
    /// loader covers.
    public init(entries: [StepProfiler.Key: StepProfiler.Entry], steps: Int, seconds: Double) {
        let perStep = 1e3 / Double(steps)
        var rows: [Row] = []
        var covered = 0.0
        let layers = Set(entries.keys.map(\.layer)).sorted()
        for layer in layers {
            let name = layer == StepProfiler.outputLayer ? "output" : layer == StepProfiler.loader ? "loader" : "\(layer)"
            let mine = entries.filter { $0.key.layer == layer }
            var named = 0.0
            for section in StepProfiler.Section.allCases where section != .total {
                guard let e = mine[StepProfiler.Key(layer: layer, section: section)] else { continue }
                named += e.seconds
                rows.append(Row(layer: name, section: section.rawValue, millisecondsPerStep: e.seconds * perStep,
                                callsPerStep: Double(e.calls) / Double(steps),
                                gflops: e.flops > 0 ? e.flops / e.seconds / 1e9 : nil))
            }
            if let total = mine[StepProfiler.Key(layer: layer, section: .total)] {
                rows.append(Row(layer: name, section: "other", millisecondsPerStep: max(0, total.seconds - named) * perStep,
                                callsPerStep: 0, gflops: nil))
                covered += total.seconds
            } else {
                covered += named
            }
        }
        rows.append(Row(layer: "step", section: "other", millisecondsPerStep: max(0, seconds - covered) * perStep,
                        callsPerStep: 0, gflops: nil))
        self.rows = rows
        millisecondsPerStep = seconds * perStep
    }

    /// The table as text, one row per (block, section), then the totals per section over blocks.
    public var text: String {
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return right ? fill + text : text + fill
        }
        func line(_ layer: String, _ section: String, _ ms: String, _ share: String, _ calls: String, _ gflops: String) -> String {
            pad(layer, 7) + pad(section, 24) + pad(ms, 11, right: true) + pad(share, 8, right: true) + pad(calls, 7, right: true)
                + pad(gflops, 10, right: true)
        }
        func row(_ layer: String, _ section: String, _ ms: Double, _ calls: Double?, _ gflops: Double?) -> String {
            line(layer, section, String(format: "%.1f", ms), String(format: "%.1f%%", 100 * ms / max(millisecondsPerStep, 1e-12)),
                 calls.map { String(format: "%.0f", $0) } ?? "", gflops.map { String(format: "%.1f", $0) } ?? "")
        }
        var lines = [line("block", "section", "ms/step", "%", "calls", "GFLOP/s")]
        for r in rows where r.millisecondsPerStep >= 0.05 {
            lines.append(row(r.layer, r.section, r.millisecondsPerStep, r.callsPerStep > 0 ? r.callsPerStep : nil, r.gflops))
        }
        lines.append("by section, all blocks:")
        var bySection: [String: (ms: Double, flops: Double)] = [:]
        for r in rows {
            let flops = (r.gflops ?? 0) * r.millisecondsPerStep * 1e-3
            bySection[r.section, default: (0, 0)].ms += r.millisecondsPerStep
            bySection[r.section, default: (0, 0)].flops += flops
        }
        for (section, v) in bySection.sorted(by: { $0.value.ms > $1.value.ms }) where v.ms >= 0.05 {
            lines.append(row("all", section, v.ms, nil, v.flops > 0 ? v.flops / (v.ms * 1e-3) : nil))
        }
        lines.append(row("step", "wall time", millisecondsPerStep, nil, nil))
        return lines.joined(separator: "\n")
    }
}
