import XCTest
import MemoryLedger
@testable import Reports

final class HTMLReportTests: XCTestCase {
    func testPageIsSelfContained() {
        let html = HTMLReport(ScriptedRun.comparison()).render()
        XCTAssertFalse(html.lowercased().contains("http"), "no links, namespaces or fetches")
        XCTAssertFalse(html.lowercased().contains("<script"), "no scripts")
        XCTAssertFalse(html.lowercased().contains("<link"), "no external stylesheets")
        XCTAssertFalse(html.lowercased().contains("src="), "no external images or fonts")
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.hasSuffix("</html>\n"))
    }

    func testOneChartPerModeWithAreasBandsAndPeak() {
        let html = HTMLReport(ScriptedRun.comparison()).render()
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2)
        XCTAssertEqual(html.components(separatedBy: "</svg>").count - 1, 2)
        // The activations area is drawn in its fixed colour; the peak label states exact bytes.
        XCTAssertTrue(html.contains("fill=\"\(CategoryPalette.color(.activations))\" points="))
        XCTAssertTrue(html.contains("peak 9.2 MiB (9,625,600 B) in backward of layer 0"))
        XCTAssertTrue(html.contains("peak 9.5 MiB (9,932,800 B) in backward of layer 0"))
        XCTAssertTrue(html.contains(">L0</text>") || html.contains("<title>layer 0:"), "layer bands are drawn")
        XCTAssertTrue(html.contains("<title>layer 2: forward, localLoss, backward, update</title>"))
        // The legend lists every category once.
        for category in Category.allCases {
            XCTAssertTrue(html.contains("<i style=\"background:\(CategoryPalette.color(category))\"></i>\(category.description)</span>"))
        }
    }

    /// Both charts use one y-scale: the same grid labels appear in each.
    func testChartsShareOneScale() {
        let comparison = ScriptedRun.comparison()
        let axis = HTMLReport.axis(for: comparison.backprop.peak.total)
        XCTAssertGreaterThanOrEqual(axis.max, comparison.backprop.peak.total)
        XCTAssertEqual(axis.max % axis.step, 0)
        XCTAssertLessThanOrEqual(axis.max / axis.step, 5)
        let html = HTMLReport(comparison).render()
        let topLabel = ">\(ByteFormat.human(axis.max))</text>"
        XCTAssertEqual(html.components(separatedBy: topLabel).count - 1, 2, "each chart's axis ends at the shared top")
    }

    func testTextFromProfilesIsEscaped() {
        var comparison = ScriptedRun.comparison()
        comparison.local.model = "mlp <script>alert(1)</script>"
        comparison.local.layers[0].name = "conv \"x\" & <b>y</b>"
        comparison.backprop.name = "back<prop>"
        comparison.local.timeline.spans[1].label = "<script>evil()</script>"
        let html = HTMLReport(comparison).render()
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("<b>y"))
        XCTAssertFalse(html.contains("back<prop>"))
        XCTAssertTrue(html.contains("mlp &lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("conv &quot;x&quot; &amp; &lt;b&gt;y&lt;/b&gt;"))
    }

    func testLongTimelinesAreDownsampledButKeepTheirPeak() {
        var comparison = ScriptedRun.comparison()
        var timeline = comparison.local.timeline
        // Stretch the local timeline to 20,000 points by repeating it.
        let base = timeline
        for r in 1..<640 {
            timeline.timeNanos += base.timeNanos.map { $0 + UInt64(r) * (base.durationNanos + 1) }
            timeline.total += base.total
            for c in Category.allCases { timeline.categories[c] += base.categories[c] }
        }
        comparison.local.timeline = timeline
        let html = HTMLReport(comparison, maxPointsPerMode: 500).render()
        let localChart = html.components(separatedBy: "<svg")[1]
        let activations = localChart.components(separatedBy: "fill=\"\(CategoryPalette.color(.activations))\" points=\"")[1]
            .prefix { $0 != "\"" }
        // Two vertices per point on each side of the polygon.
        XCTAssertLessThanOrEqual(activations.split(separator: " ").count, 4 * 500)
        XCTAssertTrue(localChart.contains("peak 9.2 MiB (9,625,600 B)"))
    }
}
