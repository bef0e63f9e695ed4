import XCTest
import MemoryLedger
@testable import Reports

final class ProfileTests: XCTestCase {
    let kib = ScriptedRun.unit

    func testProfileCapturesThePeakBreakdownByHand() {
        let profile = ScriptedRun.local().profile(name: "local")
        XCTAssertEqual(profile.peak.total, 9400 * kib)
        XCTAssertEqual(profile.peak.byCategory[.weights], 600 * kib)
        XCTAssertEqual(profile.peak.byCategory[.input], 500 * kib)
        XCTAssertEqual(profile.peak.byCategory[.activations], 4000 * kib)
        XCTAssertEqual(profile.peak.byCategory[.activationGrads], 4000 * kib)
        XCTAssertEqual(profile.peak.byCategory[.gradients], 300 * kib)
        XCTAssertEqual(profile.peak.byCategory.total, profile.peak.total)
        XCTAssertEqual(profile.peak.phase, "backward")
        XCTAssertEqual(profile.peak.layer, 0)
        // Layer 0 holds weights 300 + activations 4000 + grads 4000 + gradients 300; input has no layer.
        XCTAssertEqual(profile.peak.byLayer.first { $0.layer == 0 }?.bytes, 8600 * kib)
        XCTAssertEqual(profile.peak.byLayer.first { $0.layer == nil }?.bytes, 500 * kib)
        XCTAssertEqual(profile.activationPeak, 6000 * kib)
        XCTAssertEqual(profile.phasePeaks.map(\.phase), Phase.allCases.map(\.description))
        XCTAssertEqual(profile.phasePeaks.first { $0.phase == "localLoss" }?.byCategory[.lossTemp], 64 * kib)
        // The update phases only free; they still held what was live when they began:
        // layer 0's update starts at the peak minus nothing (9400).
        XCTAssertEqual(profile.phasePeaks.first { $0.phase == "update" }?.total, 9400 * kib)
        XCTAssertEqual(profile.phasePeaks.first { $0.phase == "update" }?.byCategory[.gradients], 300 * kib)
    }

    /// The per-category maxima read from the ledger's phase tables agree with the timeline.
    func testCategoryPeaksEqualTheTimelineMaxima() {
        for run in [ScriptedRun.local(), ScriptedRun.backprop()] {
            let profile = run.profile(name: "x")
            for category in Category.allCases {
                XCTAssertEqual(profile.categoryPeaks[category], profile.timeline.categories[category].max() ?? 0, "\(category)")
            }
            XCTAssertEqual(profile.timeline.peakTotal, profile.peak.total)
        }
    }

    func testHeadlineRatiosAreExact() {
        let comparison = ScriptedRun.comparison()
        XCTAssertEqual(comparison.headline.localPeak, 9400 * kib)
        XCTAssertEqual(comparison.headline.backpropPeak, 9700 * kib)
        XCTAssertEqual(comparison.headline.peakRatio, 9700.0 / 9400.0)
        XCTAssertEqual(comparison.headline.activationRatio, 7000.0 / 6000.0)
        XCTAssertEqual(comparison.modes.map(\.name), ["local", "backprop"])
    }

    func testHeadlineRatioIsUndefinedWhenLocalHoldsNothing() {
        var local = ScriptedRun.local().profile(name: "local")
        local.peak.total = 0
        local.activationPeak = 0
        let headline = Headline(local: local, backprop: ScriptedRun.backprop().profile(name: "backprop"))
        XCTAssertNil(headline.peakRatio)
        XCTAssertNil(headline.activationRatio)
    }
}
