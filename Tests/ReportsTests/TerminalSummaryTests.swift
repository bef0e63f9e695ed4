import XCTest
@testable import Reports

final class TerminalSummaryTests: XCTestCase {
    func testHeadlineStatesBothRatiosAndProcessPeaks() {
        let summary = TerminalSummary(ScriptedRun.comparison())
        XCTAssertEqual(summary.headline(),
                       "backprop peak / local peak = 1.03x (activations 1.17x); process peak RSS: local 40.0 MiB, backprop 40.0 MiB")
        let text = summary.render()
        XCTAssertTrue(text.contains("9,625,600"), "exact local peak bytes (9400 KiB) are shown")
        XCTAssertTrue(text.contains("not counted by the ledger   30.5 MiB   30.2 MiB"), "RSS - ledger peak - own tables")
        XCTAssertTrue(text.contains("page cache of memory-mapped shards"))
    }

    /// Every table (a block with a dashed rule) has all its lines the same width.
    func testTableLinesAreAligned() {
        let text = TerminalSummary(ScriptedRun.comparison()).render()
        let blocks = text.components(separatedBy: "\n\n")
        var tables = 0
        for block in blocks {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let rule = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).allSatisfy { $0 == "-" } && $0.contains("-") }) else { continue }
            tables += 1
            // The table runs from the header (just above the rule) to the end of the block.
            let tableLines = lines[(rule - 1)...]
            let widths = Set(tableLines.map(\.count))
            XCTAssertEqual(widths.count, 1, "misaligned table:\n\(tableLines.joined(separator: "\n"))")
            XCTAssertGreaterThan(tableLines.count, 2)
        }
        XCTAssertEqual(tables, 5, "category, phase, two per-layer and the cross-check table")
    }

    func testTextTableRightAlignsNumbersAndPadsNames() {
        var table = TextTable(header: ["name", "bytes"])
        table.add(["a", "1"])
        table.add(["longer", "1,000"])
        XCTAssertEqual(table.lines(), ["name    bytes", "-------------", "a           1", "longer  1,000"])
    }

    func testByteFormats() {
        XCTAssertEqual(ByteFormat.human(0), "0 B")
        XCTAssertEqual(ByteFormat.human(1023), "1023 B")
        XCTAssertEqual(ByteFormat.human(1536), "1.5 KiB")
        XCTAssertEqual(ByteFormat.human(212 << 20), "212.0 MiB")
        XCTAssertEqual(ByteFormat.human((1 << 20) - 1), "1.0 MiB", "never 1024.0 KiB")
        XCTAssertEqual(ByteFormat.human(-3 << 20), "-3.0 MiB")
        XCTAssertEqual(ByteFormat.exact(93_323_264), "93,323,264")
        XCTAssertEqual(ByteFormat.exact(-1000), "-1,000")
        XCTAssertEqual(ByteFormat.exact(999), "999")
        XCTAssertEqual(ByteFormat.ratio(3.4149), "3.41x")
        XCTAssertEqual(ByteFormat.ratio(nil), "n/a")
    }
}
