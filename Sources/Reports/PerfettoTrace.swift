import Foundation
import MemoryLedger

/// `trace.json` in the Chrome Trace Event Format, for ui.perfetto.dev or chrome://tracing.
///
/// One process (pid) per mode, named with `M` metadata events; an `X` slice per phase marker
/// span on the "layer phases" thread ("L2 backward"); one `C` counter track per category (and
/// the total) with the unit in its name; an instant `i` event at the peak. Timestamps are
/// microseconds from each mode's first event, so the modes line up at zero.
public struct PerfettoTrace {
    public var comparison: MemoryComparison
    /// Timeline points per mode used for the counters (the peak is always kept).
    public var maxPointsPerMode: Int

    /// Thread that holds the phase slices; counters belong to the process.
    static let phaseThread = 1

    public init(_ comparison: MemoryComparison, maxPointsPerMode: Int = 20_000) {
        self.comparison = comparison
        self.maxPointsPerMode = maxPointsPerMode
    }

    /// The trace document: `{"displayTimeUnit": "ms", "traceEvents": [...]}`, keys sorted.
    public func jsonData() throws -> Data {
        var events: [TraceEvent] = []
        for (i, mode) in comparison.modes.enumerated() {
            events += self.events(for: mode, pid: i + 1)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(TraceDocument(traceEvents: events, displayTimeUnit: "ms"))
    }

    func events(for mode: ModeProfile, pid: Int) -> [TraceEvent] {
        let timeline = mode.timeline.downsampled(maxPoints: maxPointsPerMode)
        let origin = timeline.startNanos
        func micros(_ nanos: UInt64) -> Double { Double(nanos - min(nanos, origin)) / 1000 }

        var events: [TraceEvent] = [
            TraceEvent(name: "process_name", ph: "M", pid: pid, tid: 0, args: ["name": .string(mode.name)]),
            TraceEvent(name: "process_sort_index", ph: "M", pid: pid, tid: 0, args: ["sort_index": .int(pid)]),
            TraceEvent(name: "thread_name", ph: "M", pid: pid, tid: PerfettoTrace.phaseThread, args: ["name": .string("layer phases")]),
        ]

        // Spans tile the timeline in time order, so slices on the one thread never overlap.
        for span in timeline.spans where span.phase != Phase.idle.description && span.phase != Phase.round.description {
            var args: [String: TraceValue] = ["phase": .string(span.phase), "label": .string(span.label)]
            if let layer = span.layer { args["layer"] = .int(layer) }
            events.append(TraceEvent(name: span.layer.map { "L\($0) \(span.phase)" } ?? span.phase, cat: span.phase, ph: "X",
                                     pid: pid, tid: PerfettoTrace.phaseThread, ts: micros(span.startNanos),
                                     dur: Double(span.durationNanos) / 1000, args: args))
        }

        // Counters: a value when a category changes (every category at the first point).
        let used = Category.allCases.filter { c in timeline.categories[c].contains { $0 != 0 } }
        var last: [Category: Int] = [:]
        var lastTotal: Int?
        for i in 0..<timeline.count {
            let ts = micros(timeline.timeNanos[i])
            for category in used where last[category] != timeline.categories[category][i] {
                last[category] = timeline.categories[category][i]
                events.append(counter("\(category.description) (MiB)", pid: pid, ts: ts, bytes: timeline.categories[category][i]))
            }
            if lastTotal != timeline.total[i] {
                lastTotal = timeline.total[i]
                events.append(counter("total (MiB)", pid: pid, ts: ts, bytes: timeline.total[i]))
            }
        }

        // Greedy rounds: a global instant where each begins, across every track.
        for span in timeline.spans where span.phase == Phase.round.description {
            let block = span.layer.map { " (block \($0) trains)" } ?? ""
            events.append(TraceEvent(name: "round \((span.layer ?? 0) + 1) begins\(block)", cat: span.phase, ph: "i", pid: pid,
                                     tid: PerfettoTrace.phaseThread, ts: micros(span.startNanos), s: "g",
                                     args: ["round": .int((span.layer ?? 0) + 1)]))
        }

        if let peak = timeline.peakIndex {
            events.append(TraceEvent(name: "peak \(ByteFormat.human(timeline.total[peak]))", ph: "i", pid: pid,
                                     tid: PerfettoTrace.phaseThread, ts: micros(timeline.timeNanos[peak]), s: "p",
                                     args: ["bytes": .int(timeline.total[peak])]))
        }
        return events
    }

    private func counter(_ name: String, pid: Int, ts: Double, bytes: Int) -> TraceEvent {
        TraceEvent(name: name, ph: "C", pid: pid, tid: 0, ts: ts, args: ["value": .double(ByteFormat.mebibytes(bytes))])
    }
}

/// The top-level object of a trace file.
struct TraceDocument: Codable {
    var traceEvents: [TraceEvent]
    var displayTimeUnit: String
}

/// One trace event. Optional fields are left out of the JSON when nil.
struct TraceEvent: Codable, Equatable {
    var name: String
    var cat: String?
    /// Phase letter: M metadata, X complete slice, C counter, i instant.
    var ph: String
    var pid: Int
    var tid: Int
    /// Microseconds.
    var ts: Double?
    /// Microseconds (X events).
    var dur: Double?
    /// Scope of an instant event ("p": process).
    var s: String?
    var args: [String: TraceValue]

    init(name: String, cat: String? = nil, ph: String, pid: Int, tid: Int, ts: Double? = nil, dur: Double? = nil,
         s: String? = nil, args: [String: TraceValue]) {
        self.name = name
        self.cat = cat
        self.ph = ph
        self.pid = pid
        self.tid = tid
        self.ts = ts
        self.dur = dur
        self.s = s
        self.args = args
    }
}

/// An argument value: the format allows strings and numbers.
enum TraceValue: Codable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        }
    }

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else { self = .string(try container.decode(String.self)) }
    }
}
