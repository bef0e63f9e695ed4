import Foundation
import XCTest
import MemoryLedger

/// Two threads allocating and freeing at the same time must leave the counters exact.
final class LedgerConcurrencyTests: XCTestCase {
    /// Each thread keeps at most `window` buffers of its own size live (a ring: allocate, and once
    /// the ring is full free the oldest first), so the true peak is provably between the larger
    /// thread's own maximum and the sum of both maxima.
    func testTwoThreadsLeaveExactCountsAndABoundedPeak() {
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 1000)
        let allocationsPerThread = 100_000
        let window = 4
        let sizes = [64, 128]
        let categories: [Category] = [.activations, .gradients]
        let done = DispatchGroup()
        for t in 0..<2 {
            done.enter()
            let thread = Thread {
                var ring: [UnsafeMutableRawPointer] = []
                ring.reserveCapacity(window)
                for i in 0..<allocationsPerThread {
                    if ring.count == window {
                        ledger.free(ring[i % window], bytes: sizes[t], category: categories[t], layer: t, label: "thread")
                        ring[i % window] = ledger.allocate(bytes: sizes[t], category: categories[t], layer: t, label: "thread")
                    } else {
                        ring.append(ledger.allocate(bytes: sizes[t], category: categories[t], layer: t, label: "thread"))
                    }
                }
                for p in ring { ledger.free(p, bytes: sizes[t], category: categories[t], layer: t, label: "thread") }
                done.leave()
            }
            thread.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success)

        let now = ledger.current()
        XCTAssertEqual(now.total, 0)
        XCTAssertEqual(now.byCategory, Array(repeating: 0, count: Ledger.categoryCount))
        XCTAssertEqual(now.byLayerSlot, Array(repeating: 0, count: 5))
        XCTAssertEqual(ledger.operationCounts.allocations, 2 * allocationsPerThread)
        XCTAssertEqual(ledger.operationCounts.frees, 2 * allocationsPerThread)

        let peak = ledger.peak()
        XCTAssertGreaterThanOrEqual(peak.total, window * sizes[1])
        XCTAssertLessThanOrEqual(peak.total, window * (sizes[0] + sizes[1]))
        XCTAssertLessThanOrEqual(peak.bytes(.activations), window * sizes[0])
        XCTAssertLessThanOrEqual(peak.bytes(.gradients), window * sizes[1])
        XCTAssertEqual(peak.byCategory.reduce(0, +), peak.total, "breakdown copied under the same lock as the total")
        XCTAssertEqual(peak.byLayerSlot.reduce(0, +), peak.total)

        let history = ledger.history()
        XCTAssertEqual(history.events.count, 1000)
        XCTAssertEqual(history.events.count + history.dropped, 4 * allocationsPerThread)
        XCTAssertTrue(ledger.violations.isEmpty)
        XCTAssertTrue(ledger.outstanding().isEmpty)
    }
}
