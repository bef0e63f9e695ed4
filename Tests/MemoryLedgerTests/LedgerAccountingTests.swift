import XCTest
import MemoryLedger

/// Live bytes, the high-water mark and the breakdown copied at that instant, after scripted
/// sequences whose every byte count is known by hand.
final class LedgerAccountingTests: XCTestCase {
    /// A small helper so each scripted step reads as one line.
    private struct Script {
        let ledger: Ledger
        func alloc(_ bytes: Int, _ category: Category, _ layer: Int?) -> (UnsafeMutableRawPointer, Int, Category, Int?) {
            (ledger.allocate(bytes: bytes, category: category, layer: layer, label: "script"), bytes, category, layer)
        }
        func free(_ b: (UnsafeMutableRawPointer, Int, Category, Int?)) {
            ledger.free(b.0, bytes: b.1, category: b.2, layer: b.3, label: "script")
        }
    }

    func testLiveBytesFollowAllocationsAndFreesPerCategoryAndLayer() {
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 0)
        let s = Script(ledger: ledger)
        let w = s.alloc(100, .weights, 0)
        let a = s.alloc(200, .activations, 0)
        let g = s.alloc(30, .gradients, nil)
        var now = ledger.current()
        XCTAssertEqual(now.total, 330)
        XCTAssertEqual(now.bytes(.weights), 100)
        XCTAssertEqual(now.bytes(.activations), 200)
        XCTAssertEqual(now.bytes(.gradients), 30)
        XCTAssertEqual(now.bytes(layer: 0), 300)
        XCTAssertEqual(now.bytes(layer: nil), 30)
        XCTAssertEqual(now.byCategory.reduce(0, +), now.total)
        XCTAssertEqual(now.byLayerSlot.reduce(0, +), now.total)
        s.free(a)
        now = ledger.current()
        XCTAssertEqual(now.total, 130)
        XCTAssertEqual(now.bytes(.activations), 0)
        XCTAssertEqual(now.bytes(layer: 0), 100)
        s.free(w); s.free(g)
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.current().byLayerSlot, Array(repeating: 0, count: 5))
        XCTAssertEqual(ledger.operationCounts.allocations, 3)
        XCTAssertEqual(ledger.operationCounts.frees, 3)
    }

    func testPeakKeepsTheBreakdownOfTheInstantItWasReached() {
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 0)
        let s = Script(ledger: ledger)
        let w = s.alloc(100, .weights, 0)
        let a = s.alloc(200, .activations, 0)
        let c = s.alloc(50, .activations, 1)      // live 350: first peak
        s.free(a)                                  // 150
        let g = s.alloc(150, .gradients, nil)      // 300: below the peak, must not touch it
        XCTAssertEqual(ledger.peak().total, 350)
        XCTAssertEqual(ledger.peak().bytes(.activations), 250)
        XCTAssertEqual(ledger.peak().bytes(.gradients), 0)
        let l = s.alloc(60, .lossTemp, 7)          // 360: new peak; layer 7 shares the last slot (layer 3)
        let peak = ledger.peak()
        XCTAssertEqual(peak.total, 360)
        XCTAssertEqual(peak.bytes(.weights), 100)
        XCTAssertEqual(peak.bytes(.activations), 50)
        XCTAssertEqual(peak.bytes(.gradients), 150)
        XCTAssertEqual(peak.bytes(.lossTemp), 60)
        XCTAssertEqual(peak.bytes(layer: 0), 100)
        XCTAssertEqual(peak.bytes(layer: 1), 50)
        XCTAssertEqual(peak.bytes(layer: nil), 150)
        XCTAssertEqual(peak.bytes(layer: 3), 60)
        XCTAssertEqual(peak.bytes(layer: 7), 60)
        XCTAssertEqual(peak.layers.map { $0.layer }, [nil, 0, 1, 3])
        XCTAssertEqual(peak.layers.map { $0.bytes }, [150, 100, 50, 60])
        // Freeing everything leaves the peak and its breakdown untouched.
        s.free(w); s.free(c); s.free(g); s.free(l)
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.peak(), peak)
    }

    func testZeroByteAllocationsAreDistinctAndBookNothing() {
        let ledger = Ledger(eventCapacity: 0)
        let p = ledger.allocate(bytes: 0, category: .workspace, layer: nil, label: "empty.a")
        let q = ledger.allocate(bytes: 0, category: .workspace, layer: nil, label: "empty.b")
        XCTAssertNotEqual(p, q)
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.peak().total, 0)
        ledger.free(p, bytes: 0, category: .workspace, layer: nil, label: "empty.a")
        ledger.free(q, bytes: 0, category: .workspace, layer: nil, label: "empty.b")
        XCTAssertEqual(ledger.violations.count, 0)
    }

    func testAllocationsAreSixtyFourByteAligned() {
        let ledger = Ledger(eventCapacity: 0)
        for bytes in [1, 3, 100, 4096 + 4] {
            let p = ledger.allocate(bytes: bytes, category: .workspace, layer: nil, label: "aligned")
            XCTAssertEqual(Int(bitPattern: p) % 64, 0, "\(bytes) bytes")
            ledger.free(p, bytes: bytes, category: .workspace, layer: nil, label: "aligned")
        }
    }

    func testBookAndUnbookCountWithoutOwningMemory() {
        let ledger = Ledger(eventCapacity: 0)
        ledger.book(bytes: 4096, category: .loader, layer: nil, label: "mapped")
        XCTAssertEqual(ledger.current().bytes(.loader), 4096)
        XCTAssertEqual(ledger.peak().total, 4096)
        ledger.unbook(bytes: 4096, category: .loader, layer: nil, label: "mapped")
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertTrue(ledger.outstanding().isEmpty)
    }

    func testTrackedBufferFreesItsBytesOnDeinit() {
        let ledger = Ledger(eventCapacity: 0)
        do {
            let buffer = TrackedBuffer<Float>(count: 10, category: .activations, layer: 2, label: "tracked", ledger: ledger)
            XCTAssertEqual(buffer.byteCount, 40)
            XCTAssertEqual(ledger.current().bytes(.activations), 40)
            XCTAssertEqual(ledger.current().bytes(layer: 2), 40)
            buffer.buffer.initialize(repeating: 1)
            XCTAssertEqual(buffer.buffer.reduce(0, +), 10)
        }
        XCTAssertEqual(ledger.current().total, 0)
        XCTAssertEqual(ledger.peak().total, 40)
        XCTAssertEqual(ledger.operationCounts.frees, 1)
        XCTAssertTrue(ledger.outstanding().isEmpty)
        XCTAssertTrue(ledger.violations.isEmpty)
    }
}

/// A buffer keeps its ledger alive: Swift may release a local ledger right after its last use,
/// and a buffer freed later must still find it to book the free.
final class TrackedBufferLifetimeTests: XCTestCase {
    /// Returns a buffer whose ledger nothing else references, and a weak view of that ledger.
    private func makeBufferOnAFreshLedger() -> (TrackedBuffer<Float>, () -> Ledger?) {
        let fresh = Ledger(eventCapacity: 0)
        weak let weakLedger = fresh
        let buffer = TrackedBuffer<Float>(count: 256, category: .weights, layer: 0, label: "outlives", ledger: fresh)
        return (buffer, { weakLedger })
    }

    func testBufferKeepsItsLedgerAliveUntilItIsFreed() {
        var buffer: TrackedBuffer<Float>?
        let ledger: () -> Ledger?
        (buffer, ledger) = makeBufferOnAFreshLedger()
        XCTAssertNotNil(ledger(), "the only reference left to the ledger is the buffer's")
        XCTAssertEqual(ledger()?.current().total, 1024)
        buffer = nil
        XCTAssertNil(buffer)
        XCTAssertNil(ledger(), "the ledger goes away with its last buffer")
    }
}
