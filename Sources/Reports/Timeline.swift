import MemoryLedger

/// Live bytes over time for one mode, one point per ledger event, per category and in total,
/// with the phase/layer spans the trainer marked.
///
/// Built from `Ledger.history()`: each event carries the live bytes of its own category just
/// after it (`liveCategory`), so a category's series changes only at its own events and every
/// other category is carried forward unchanged.
public struct Timeline: Equatable, Sendable, Codable {
    /// Time of each point, nanoseconds on the ledger's clock.
    public var timeNanos: [UInt64]
    /// Live bytes of all categories just after each point (the ledger's own `liveTotal`).
    public var total: [Int]
    /// Live bytes per category just after each point.
    public var categories: CategorySeries
    /// Spans between phase markers, in time order.
    public var spans: [MarkerSpan]
    /// Ledger events this timeline was built from (more than `count` once downsampled).
    public var sourceEventCount: Int
    /// Events the ledger dropped because its history was full; the timeline ends early then.
    public var droppedEvents: Int

    public init(timeNanos: [UInt64], total: [Int], categories: CategorySeries, spans: [MarkerSpan],
                sourceEventCount: Int, droppedEvents: Int) {
        self.timeNanos = timeNanos
        self.total = total
        self.categories = categories
        self.spans = spans
        self.sourceEventCount = sourceEventCount
        self.droppedEvents = droppedEvents
    }

    /// Reconstructs the per-category series from an event list (oldest first).
    ///
    /// - Parameters:
    ///   - events: `Ledger.history().events`.
    ///   - dropped: `Ledger.history().dropped`.
    ///   - final: `Ledger.current()` when captured. A category with no event in the history never
    ///     changed during it, so its live bytes throughout are its bytes now; without `final`
    ///     such categories read as 0. (Exact when nothing was dropped.)
    public init(events: [LedgerEvent], dropped: Int = 0, final: LedgerSnapshot? = nil) {
        let categoryCount = Category.allCases.count
        // Live bytes before the first event: from each category's first event, undoing its delta.
        // Markers are booked as `.activations` with delta 0, so they give that category directly.
        var live = final?.byCategory ?? Array(repeating: 0, count: categoryCount)
        var seen = Array(repeating: false, count: categoryCount)
        for event in events where !seen[event.category.rawValue] {
            seen[event.category.rawValue] = true
            live[event.category.rawValue] = event.liveCategory - event.delta
        }

        var times: [UInt64] = []
        var totals: [Int] = []
        var series = CategorySeries()
        times.reserveCapacity(events.count)
        totals.reserveCapacity(events.count)
        var spans: [MarkerSpan] = []
        for event in events {
            live[event.category.rawValue] = event.liveCategory
            times.append(event.time)
            totals.append(event.liveTotal)
            series.append(live)
            if event.kind == .marker {
                if var open = spans.popLast() {
                    open.endNanos = max(open.startNanos, event.time)
                    spans.append(open)
                }
                spans.append(MarkerSpan(phase: event.phase.description, layer: event.layer < 0 ? nil : event.layer,
                                        label: event.label.description, startNanos: event.time, endNanos: event.time))
            }
        }
        // The last span runs to the last event.
        if var open = spans.popLast(), let last = times.last {
            open.endNanos = max(open.startNanos, last)
            spans.append(open)
        }
        self.init(timeNanos: times, total: totals, categories: series, spans: spans,
                  sourceEventCount: events.count, droppedEvents: dropped)
    }

    /// Number of points.
    public var count: Int { timeNanos.count }

    /// Index of the first point holding the highest total, nil when empty.
    public var peakIndex: Int? {
        guard var best = total.indices.first else { return nil }
        for i in total.indices where total[i] > total[best] { best = i }
        return best
    }

    /// Highest total over the timeline (0 when empty).
    public var peakTotal: Int { peakIndex.map { total[$0] } ?? 0 }

    /// Time of the first point (0 when empty); reports measure time from here.
    public var startNanos: UInt64 { timeNanos.first ?? 0 }

    /// Time from the first to the last point.
    public var durationNanos: UInt64 { (timeNanos.last ?? 0) - startNanos }
}
