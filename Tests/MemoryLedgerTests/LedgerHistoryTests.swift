import XCTest
import MemoryLedger

/// The bounded event history: what each event carries, capacity, and the dropped count.
final class LedgerHistoryTests: XCTestCase {
    func testEventsCarryDeltaKindAndLiveTotalsAfterTheEvent() {
        let ledger = Ledger(eventCapacity: 16)
        let w = ledger.allocate(bytes: 100, category: .weights, layer: 0, label: "w")
        ledger.enter(.forward, layer: 2, label: "fwd")
        let a = ledger.allocate(bytes: 40, category: .activations, layer: 2, label: "a")
        let b = ledger.allocate(bytes: 8, category: .activations, layer: nil, label: "b")
        ledger.free(a, bytes: 40, category: .activations, layer: 2, label: "a")
        let (events, dropped) = ledger.history()
        XCTAssertEqual(dropped, 0)
        XCTAssertEqual(events.map { $0.kind }, [.allocate, .marker, .allocate, .allocate, .free])
        XCTAssertEqual(events.map { $0.delta }, [100, 0, 40, 8, -40])
        XCTAssertEqual(events.map { $0.liveTotal }, [100, 100, 140, 148, 108])
        XCTAssertEqual(events.map { $0.liveCategory }, [100, 0, 40, 48, 8])
        XCTAssertEqual(events.map { $0.layer }, [0, 2, 2, -1, 2])
        XCTAssertEqual(events.map { $0.phase }, [.idle, .forward, .forward, .forward, .forward])
        XCTAssertEqual(events.map { "\($0.label)" }, ["w", "fwd", "a", "b", "a"])
        XCTAssertEqual(events.map { $0.category }, [.weights, .activations, .activations, .activations, .activations])
        XCTAssertTrue(zip(events, events.dropFirst()).allSatisfy { $0.time <= $1.time }, "times are monotonic")
        ledger.free(b, bytes: 8, category: .activations, layer: nil, label: "b")
        ledger.free(w, bytes: 100, category: .weights, layer: 0, label: "w")
    }

    func testHistoryKeepsTheFirstEventsUpToCapacityAndCountsTheRestAsDropped() {
        let ledger = Ledger(eventCapacity: 5)
        var pointers: [UnsafeMutableRawPointer] = []
        for i in 0..<6 { pointers.append(ledger.allocate(bytes: 10 * (i + 1), category: .workspace, layer: nil, label: "ws")) }
        ledger.enter(.backward)
        for (i, p) in pointers.enumerated() { ledger.free(p, bytes: 10 * (i + 1), category: .workspace, layer: nil, label: "ws") }
        // 6 allocations + 1 marker + 6 frees = 13 events; 5 kept.
        let (events, dropped) = ledger.history()
        XCTAssertEqual(events.count, 5)
        XCTAssertEqual(dropped, 8)
        XCTAssertEqual(events.map { $0.liveTotal }, [10, 30, 60, 100, 150])
        // Counters keep running after the history is full.
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.peak().total, 210)

        ledger.clearEvents()
        XCTAssertEqual(ledger.history().events.count, 0)
        XCTAssertEqual(ledger.history().dropped, 0)
        let p = ledger.allocate(bytes: 1, category: .input, layer: nil, label: "after clear")
        XCTAssertEqual(ledger.history().events.count, 1)
        XCTAssertEqual(ledger.history().events.first?.liveTotal, 1)
        ledger.free(p, bytes: 1, category: .input, layer: nil, label: "after clear")
    }

    func testZeroCapacityDropsEverythingAndRecordingOffRecordsNothing() {
        let none = Ledger(eventCapacity: 0)
        let p = none.allocate(bytes: 4, category: .input, layer: nil, label: "p")
        none.free(p, bytes: 4, category: .input, layer: nil, label: "p")
        XCTAssertEqual(none.history().events.count, 0)
        XCTAssertEqual(none.history().dropped, 2)

        let off = Ledger(eventCapacity: 8)
        off.setRecording(false)
        let q = off.allocate(bytes: 4, category: .input, layer: nil, label: "q")
        off.enter(.forward)
        off.free(q, bytes: 4, category: .input, layer: nil, label: "q")
        XCTAssertEqual(off.history().events.count, 0)
        XCTAssertEqual(off.history().dropped, 0)
        XCTAssertEqual(off.peak().total, 4, "counters run while recording is off")
    }
}
