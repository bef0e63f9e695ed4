import XCTest
import MemoryLedger
@testable import Reports

final class MemoryJSONTests: XCTestCase {
    func testDocumentRoundTripsAndCarriesTheSchemaVersion() throws {
        let document = MemoryDocument(comparison: ScriptedRun.comparison(), generatedAt: "2025-01-01T00:00:00Z")
        let data = try document.jsonData()
        XCTAssertEqual(try MemoryDocument.decode(data), document)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        XCTAssertEqual(object?["schema"] as? String, "layerwise.memory/1")
        // Categories are keyed by name, so readers need not know the enum's raw values.
        let local = (object?["comparison"] as? [String: Any])?["local"] as? [String: Any]
        let peak = (local?["peak"] as? [String: Any])?["byCategory"] as? [String: Any]
        XCTAssertEqual(peak?["activations"] as? Int, 4000 * ScriptedRun.unit)
        let timeline = local?["timeline"] as? [String: Any]
        XCTAssertNotNil((timeline?["categories"] as? [String: Any])?["lossTemp"] as? [Int])
    }

    func testEncodingIsDeterministicAndOmitsTheTimeWhenNotGiven() throws {
        let comparison = ScriptedRun.comparison()
        let first = try MemoryDocument(comparison: comparison).jsonData()
        let second = try MemoryDocument(comparison: comparison).jsonData()
        XCTAssertEqual(first, second)
        XCTAssertFalse(String(decoding: first, as: UTF8.self).contains("generatedAt"))
        XCTAssertTrue(String(decoding: first, as: UTF8.self).hasPrefix("{\"comparison\":"), "keys are sorted")
    }

    func testOtherSchemaVersionsAreRefused() throws {
        var document = MemoryDocument(comparison: ScriptedRun.comparison())
        document.schema = "layerwise.memory/2"
        let data = try document.jsonData()
        XCTAssertThrowsError(try MemoryDocument.decode(data)) { error in
            XCTAssertEqual(error as? ReportError, .unsupportedSchema(found: "layerwise.memory/2"))
        }
    }

    func testDownsampledDocumentKeepsEachModesPeak() throws {
        let comparison = ScriptedRun.comparison()
        let small = MemoryDocument(comparison: comparison).downsampled(maxPoints: 6)
        XCTAssertLessThanOrEqual(small.comparison.local.timeline.count, 6)
        XCTAssertEqual(small.comparison.local.timeline.peakTotal, comparison.local.peak.total)
        XCTAssertEqual(small.comparison.backprop.timeline.peakTotal, comparison.backprop.peak.total)
    }
}
