import XCTest
import MemoryLedger

/// The debug-build checks: a double free is reported, not executed; leaks are listed.
final class LedgerDebugChecksTests: XCTestCase {
    #if DEBUG
    func testDoubleFreeIsCaughtAsAViolationAndNotPassedToFree() {
        let ledger = Ledger(eventCapacity: 0)
        let p = ledger.allocate(bytes: 256, category: .workspace, layer: nil, label: "twice")
        ledger.free(p, bytes: 256, category: .workspace, layer: nil, label: "twice")
        XCTAssertTrue(ledger.violations.isEmpty)
        ledger.free(p, bytes: 256, category: .workspace, layer: nil, label: "twice")
        XCTAssertEqual(ledger.violations.count, 1)
        XCTAssertTrue(ledger.violations[0].description.contains("twice"))
        XCTAssertTrue(ledger.violations[0].description.contains("double free"))
        // The rejected free books nothing: live stays at zero, not -256.
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.operationCounts.frees, 1)
    }

    func testFreeWithOtherTagsThanTheAllocationIsAViolation() {
        let ledger = Ledger(eventCapacity: 0)
        let p = ledger.allocate(bytes: 64, category: .activations, layer: 1, label: "mislabelled")
        ledger.free(p, bytes: 32, category: .activations, layer: 1, label: "mislabelled")
        XCTAssertEqual(ledger.violations.count, 1)
        XCTAssertTrue(ledger.violations[0].description.contains("64"))
    }

    func testNeverFreedBufferShowsInOutstanding() {
        let ledger = Ledger(eventCapacity: 0)
        let freed = ledger.allocate(bytes: 16, category: .input, layer: nil, label: "freed")
        let leaked = ledger.allocate(bytes: 48, category: .optimizerState, layer: 3, label: "leaked")
        ledger.free(freed, bytes: 16, category: .input, layer: nil, label: "freed")
        let outstanding = ledger.outstanding()
        XCTAssertEqual(outstanding.count, 1)
        XCTAssertEqual(outstanding.first?.label, "leaked")
        XCTAssertEqual(outstanding.first?.bytes, 48)
        XCTAssertEqual(outstanding.first?.category, .optimizerState)
        XCTAssertEqual(outstanding.first?.layer, 3)
        ledger.free(leaked, bytes: 48, category: .optimizerState, layer: 3, label: "leaked")
        XCTAssertTrue(ledger.outstanding().isEmpty)
    }
    #else
    func testReleaseBuildsReportNoDebugChecks() {
        let ledger = Ledger(eventCapacity: 0)
        let p = ledger.allocate(bytes: 16, category: .input, layer: nil, label: "release")
        XCTAssertTrue(ledger.outstanding().isEmpty)
        ledger.free(p, bytes: 16, category: .input, layer: nil, label: "release")
    }
    #endif
}
