import XCTest
import MemoryLedger

/// Per-phase maxima, the phase and layer recorded with the peak, and `resetPeaks`.
final class LedgerPhaseTests: XCTestCase {
    private func alloc(_ ledger: Ledger, _ bytes: Int, _ category: Category, _ layer: Int? = nil) -> UnsafeMutableRawPointer {
        ledger.allocate(bytes: bytes, category: category, layer: layer, label: "phase")
    }
    private func free(_ ledger: Ledger, _ p: UnsafeMutableRawPointer, _ bytes: Int, _ category: Category, _ layer: Int? = nil) {
        ledger.free(p, bytes: bytes, category: category, layer: layer, label: "phase")
    }

    func testPhaseMaximaAreKeptPerPhaseAndPerCategory() {
        let ledger = Ledger(eventCapacity: 0)
        let weights = alloc(ledger, 1000, .weights, 0)           // idle: 1000
        ledger.enter(.forward, layer: 0)
        let act = alloc(ledger, 400, .activations, 0)           // forward: 1400
        ledger.enter(.localLoss, layer: 0)
        let sim = alloc(ledger, 64, .lossTemp, 0)               // localLoss: 1464
        free(ledger, sim, 64, .lossTemp, 0)
        ledger.enter(.backward, layer: 0)
        let grad = alloc(ledger, 400, .activationGrads, 0)      // backward: 1800 (the peak)
        free(ledger, act, 400, .activations, 0)
        free(ledger, grad, 400, .activationGrads, 0)
        ledger.enter(.forward, layer: 1)
        let act2 = alloc(ledger, 100, .activations, 1)          // forward again: 1100 < 1400
        free(ledger, act2, 100, .activations, 1)

        XCTAssertEqual(ledger.phasePeak(.idle), 1000)
        XCTAssertEqual(ledger.phasePeak(.forward), 1400)
        XCTAssertEqual(ledger.phasePeak(.forward, .activations), 400)
        XCTAssertEqual(ledger.phasePeak(.localLoss), 1464)
        XCTAssertEqual(ledger.phasePeak(.localLoss, .lossTemp), 64)
        XCTAssertEqual(ledger.phasePeak(.backward), 1800)
        XCTAssertEqual(ledger.phasePeak(.backward, .activationGrads), 400)
        XCTAssertEqual(ledger.phasePeak(.backward, .lossTemp), 0)
        XCTAssertEqual(ledger.phasePeak(.update), 0)
        let peak = ledger.peak()
        XCTAssertEqual(peak.total, 1800)
        XCTAssertEqual(peak.phase, .backward)
        XCTAssertEqual(peak.layer, 0)
        XCTAssertEqual(ledger.phase, .forward)
        free(ledger, weights, 1000, .weights, 0)
    }

    /// Bytes that are live when a phase begins are live during it, even if the phase only frees.
    /// (The per-phase bound W_k of the memory proofs would otherwise be checked against too little.)
    func testBytesLiveOnEnteringAPhaseCountTowardItsMaximum() {
        let ledger = Ledger(eventCapacity: 0)
        let act = alloc(ledger, 300, .activations)
        let grad = alloc(ledger, 200, .gradients)
        ledger.enter(.update)
        free(ledger, act, 300, .activations)
        free(ledger, grad, 200, .gradients)
        XCTAssertEqual(ledger.phasePeak(.update), 500)
        XCTAssertEqual(ledger.phasePeak(.update, .activations), 300)
        XCTAssertEqual(ledger.phasePeak(.update, .gradients), 200)
    }

    func testResetPeaksRestartsFromWhatIsLiveNow() {
        let ledger = Ledger(eventCapacity: 0)
        let kept = alloc(ledger, 100, .weights, 0)
        ledger.enter(.forward, layer: 0)
        let big = alloc(ledger, 5000, .activations, 0)
        free(ledger, big, 5000, .activations, 0)
        XCTAssertEqual(ledger.peak().total, 5100)
        XCTAssertEqual(ledger.phasePeak(.forward), 5100)

        ledger.resetPeaks()
        var peak = ledger.peak()
        XCTAssertEqual(peak.total, 100)
        XCTAssertEqual(peak.bytes(.weights), 100)
        XCTAssertEqual(peak.bytes(.activations), 0)
        XCTAssertEqual(peak.bytes(layer: 0), 100)
        XCTAssertEqual(ledger.phasePeak(.forward), 100)
        XCTAssertEqual(ledger.phasePeak(.forward, .activations), 0)

        let small = alloc(ledger, 50, .activations, 1)
        peak = ledger.peak()
        XCTAssertEqual(peak.total, 150)
        XCTAssertEqual(peak.bytes(layer: 1), 50)
        XCTAssertEqual(ledger.phasePeak(.forward), 150)
        free(ledger, small, 50, .activations, 1)
        free(ledger, kept, 100, .weights, 0)
        // Counters of operations are not reset.
        XCTAssertEqual(ledger.operationCounts.allocations, 3)
    }
}
