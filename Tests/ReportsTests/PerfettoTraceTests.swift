import XCTest
import MemoryLedger
@testable import Reports

final class PerfettoTraceTests: XCTestCase {
    func traceEvents(_ comparison: MemoryComparison = ScriptedRun.comparison()) throws -> (top: [String: Any], events: [[String: Any]]) {
        let data = try PerfettoTrace(comparison).jsonData()
        let top = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let events = try XCTUnwrap(top["traceEvents"] as? [[String: Any]])
        return (top, events)
    }

    func testTopLevelShape() throws {
        let (top, events) = try traceEvents()
        XCTAssertEqual(top["displayTimeUnit"] as? String, "ms")
        XCTAssertEqual(Set(top.keys), ["traceEvents", "displayTimeUnit"])
        XCTAssertFalse(events.isEmpty)
        for event in events {
            XCTAssertNotNil(event["ph"] as? String)
            XCTAssertNotNil(event["pid"] as? Int)
            XCTAssertNotNil(event["name"] as? String)
        }
    }

    func testMetadataNamesEachModesProcessAndThread() throws {
        let (_, events) = try traceEvents()
        let metadata = events.filter { $0["ph"] as? String == "M" }
        let processNames = metadata.filter { $0["name"] as? String == "process_name" }
            .map { ($0["pid"] as! Int, ($0["args"] as! [String: Any])["name"] as! String) }
        XCTAssertEqual(processNames.map(\.0), [1, 2])
        XCTAssertEqual(processNames.map(\.1), ["local", "backprop"])
        let threadNames = metadata.filter { $0["name"] as? String == "thread_name" }
        XCTAssertEqual(Set(threadNames.map { $0["pid"] as! Int }), [1, 2])
        // Every pid that has events has a name.
        XCTAssertEqual(Set(events.map { $0["pid"] as! Int }), [1, 2])
    }

    func testSlicesHaveNonNegativeDurationsAndMonotoneStartsPerThread() throws {
        let (_, events) = try traceEvents()
        let slices = events.filter { $0["ph"] as? String == "X" }
        // Local: 4 phases x 3 layers + load; backprop: 3 forward + 3 backward + update + load.
        XCTAssertEqual(slices.filter { $0["pid"] as? Int == 1 }.count, 13)
        XCTAssertEqual(slices.filter { $0["pid"] as? Int == 2 }.count, 8)
        var lastStart: [String: Double] = [:]
        var lastEnd: [String: Double] = [:]
        for slice in slices {
            let thread = "\(slice["pid"]!)/\(slice["tid"]!)"
            let ts = try XCTUnwrap(slice["ts"] as? Double), dur = try XCTUnwrap(slice["dur"] as? Double)
            XCTAssertGreaterThanOrEqual(dur, 0)
            XCTAssertGreaterThanOrEqual(ts, 0)
            XCTAssertGreaterThanOrEqual(ts, lastStart[thread] ?? 0, "ts monotone on \(thread)")
            XCTAssertGreaterThanOrEqual(ts + 1e-6, lastEnd[thread] ?? 0, "slices on one thread do not overlap")
            lastStart[thread] = ts
            lastEnd[thread] = ts + dur
        }
        let names = slices.filter { $0["pid"] as? Int == 1 }.map { $0["name"] as! String }
        XCTAssertEqual(Array(names.prefix(5)), ["load", "L0 forward", "L0 localLoss", "L0 backward", "L0 update"])
        XCTAssertEqual((slices[1]["args"] as? [String: Any])?["layer"] as? Int, 0)
    }

    func testCountersCarryNumbersAndTheUnitInTheirName() throws {
        let (_, events) = try traceEvents()
        let counters = events.filter { $0["ph"] as? String == "C" }
        XCTAssertFalse(counters.isEmpty)
        for counter in counters {
            let name = counter["name"] as! String
            XCTAssertTrue(name.hasSuffix(" (MiB)"), name)
            let args = try XCTUnwrap(counter["args"] as? [String: Any])
            XCTAssertFalse(args.isEmpty)
            for value in args.values { XCTAssertTrue(value is NSNumber && !(value is String), "\(name): \(value)") }
            XCTAssertNotNil(counter["ts"] as? Double)
        }
        // Decoding every counter's args as numbers throws on a string or a boolean.
        struct Event: Decodable {
            enum Keys: String, CodingKey { case ph, args }
            var counterArgs: [String: Double]?
            init(from decoder: Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                if try container.decode(String.self, forKey: .ph) == "C" {
                    counterArgs = try container.decode([String: Double].self, forKey: .args)
                }
            }
        }
        struct Document: Decodable { var traceEvents: [Event] }
        let decoded = try JSONDecoder().decode(Document.self, from: PerfettoTrace(ScriptedRun.comparison()).jsonData())
        XCTAssertEqual(decoded.traceEvents.compactMap(\.counterArgs).count, counters.count)
        // The local total counter reaches exactly the ledger peak.
        let totals = counters.filter { $0["pid"] as? Int == 1 && $0["name"] as? String == "total (MiB)" }
            .map { ($0["args"] as! [String: Any])["value"] as! Double }
        XCTAssertEqual(totals.max(), 9400.0 / 1024.0)
        // Categories that never hold bytes in a mode get no track there (backprop has no lossTemp).
        XCTAssertFalse(counters.contains { $0["pid"] as? Int == 2 && $0["name"] as? String == "lossTemp (MiB)" })
        XCTAssertTrue(counters.contains { $0["pid"] as? Int == 1 && $0["name"] as? String == "lossTemp (MiB)" })
    }

    func testTraceIsDeterministic() throws {
        let comparison = ScriptedRun.comparison()
        XCTAssertEqual(try PerfettoTrace(comparison).jsonData(), try PerfettoTrace(comparison).jsonData())
    }
}
