import XCTest
import MemoryLedger
@testable import Reports

final class TimelineTests: XCTestCase {
    /// Five events written out by hand: each category changes only at its own events.
    func testTimelineMatchesHandComputedSeriesAtEveryEvent() {
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 64)
        ledger.book(bytes: 100, category: .weights, layer: 0, label: "w")
        ledger.enter(.forward, layer: 0, label: "f")
        ledger.book(bytes: 40, category: .activations, layer: 0, label: "a")
        ledger.book(bytes: 7, category: .workspace, layer: 0, label: "s")
        ledger.unbook(bytes: 40, category: .activations, layer: 0, label: "a")
        let history = ledger.history()
        let timeline = Timeline(events: history.events, dropped: history.dropped, final: ledger.current())

        XCTAssertEqual(timeline.count, 5)
        XCTAssertEqual(timeline.categories[.weights], [100, 100, 100, 100, 100])
        XCTAssertEqual(timeline.categories[.activations], [0, 0, 40, 40, 0])
        XCTAssertEqual(timeline.categories[.workspace], [0, 0, 0, 7, 7])
        XCTAssertEqual(timeline.categories[.gradients], [0, 0, 0, 0, 0])
        XCTAssertEqual(timeline.total, [100, 100, 140, 147, 107])
        XCTAssertEqual(timeline.timeNanos, history.events.map(\.time))
        XCTAssertEqual(timeline.peakIndex, 3)
    }

    func testScriptedTimelineMatchesIndependentModelAtEveryEvent() {
        for run in [ScriptedRun.local(), ScriptedRun.backprop()] {
            let history = run.ledger.history()
            let timeline = Timeline(events: history.events, dropped: history.dropped, final: run.ledger.current())
            XCTAssertEqual(timeline.count, run.expected.count)
            for i in 0..<timeline.count {
                XCTAssertEqual(timeline.categories.point(i).values, run.expected[i], "point \(i)")
                XCTAssertEqual(timeline.categories.point(i).total, timeline.total[i], "categories sum to the ledger total at point \(i)")
            }
        }
    }

    /// After `clearEvents` the history starts with bytes already live: categories with events
    /// recover their starting value from the first event, the others from the final snapshot.
    func testTimelineStartsFromBytesLiveBeforeTheHistory() {
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 64)
        ledger.book(bytes: 1000, category: .weights, layer: 0, label: "w")
        ledger.book(bytes: 300, category: .optimizerState, layer: 0, label: "m")
        ledger.book(bytes: 50, category: .activations, layer: 0, label: "a")
        ledger.clearEvents()
        ledger.book(bytes: 20, category: .activations, layer: 0, label: "a2")
        ledger.book(bytes: 5, category: .gradients, layer: 0, label: "g")
        let history = ledger.history()
        let timeline = Timeline(events: history.events, final: ledger.current())
        XCTAssertEqual(timeline.categories[.weights], [1000, 1000])
        XCTAssertEqual(timeline.categories[.optimizerState], [300, 300])
        XCTAssertEqual(timeline.categories[.activations], [70, 70])
        XCTAssertEqual(timeline.categories[.gradients], [0, 5])
        XCTAssertEqual(timeline.total, [1370, 1375])
    }

    func testMarkerSpansFollowPhasesAndTileTheTimeline() {
        let run = ScriptedRun.local()
        let timeline = Timeline(events: run.ledger.history().events)
        // load, then 4 phases x 3 layers, then idle.
        XCTAssertEqual(timeline.spans.count, 14)
        XCTAssertEqual(timeline.spans.prefix(5).map(\.phase), ["load", "forward", "localLoss", "backward", "update"])
        XCTAssertEqual(timeline.spans[5].layer, 1)
        XCTAssertNil(timeline.spans[0].layer)
        XCTAssertEqual(timeline.spans.last?.phase, "idle")
        XCTAssertEqual(timeline.spans.last?.endNanos, timeline.timeNanos.last)
        for (a, b) in zip(timeline.spans, timeline.spans.dropFirst()) {
            XCTAssertEqual(a.endNanos, b.startNanos, "spans end where the next marker starts")
            XCTAssertLessThanOrEqual(a.startNanos, a.endNanos)
        }
    }

    func testDownsamplingBoundsPointsAndKeepsThePeakExactly() {
        // 50,000 points of a sawtooth with one spike somewhere in the middle.
        let n = 50_000, spikeAt = 31_337
        var series = CategorySeries()
        var total: [Int] = []
        for i in 0..<n {
            var live = Array(repeating: 0, count: Category.allCases.count)
            live[Category.weights.rawValue] = 1000
            live[Category.activations.rawValue] = (i % 97) * 10 + (i == spikeAt ? 123_457 : 0)
            series.append(live)
            total.append(live.reduce(0, +))
        }
        let timeline = Timeline(timeNanos: (0..<n).map { UInt64($0) * 1_000 }, total: total, categories: series,
                                spans: [], sourceEventCount: n, droppedEvents: 0)
        let small = timeline.downsampled(maxPoints: 2000)
        XCTAssertLessThanOrEqual(small.count, 2000)
        XCTAssertGreaterThan(small.count, 1000, "buckets should not collapse")
        XCTAssertEqual(small.peakTotal, timeline.peakTotal)
        XCTAssertEqual(small.peakTotal, 1000 + (spikeAt % 97) * 10 + 123_457)
        XCTAssertEqual(small.categories.point(small.peakIndex!), timeline.categories.point(spikeAt))
        XCTAssertEqual(small.timeNanos.first, 0)
        XCTAssertEqual(small.timeNanos.last, UInt64(n - 1) * 1_000)
        XCTAssertEqual(small.timeNanos, small.timeNanos.sorted(), "points stay in time order")
        XCTAssertEqual(small.sourceEventCount, n)
        for c in Category.allCases { XCTAssertEqual(small.categories[c].count, small.count) }
        // The lowest value also survives (each bucket keeps its minimum too).
        XCTAssertEqual(small.total.min(), timeline.total.min())
    }

    func testDownsamplingLeavesShortTimelinesAlone() {
        let timeline = Timeline(events: ScriptedRun.local().ledger.history().events)
        XCTAssertEqual(timeline.downsampled(maxPoints: 2000), timeline)
    }
}
