import XCTest
@testable import Reports

final class ReportWriterTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "layerwise-reports-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testWritesEveryReportAndLeavesNoTemporaryFiles() throws {
        let comparison = ScriptedRun.comparison()
        let paths = try ReportWriter(directory: directory + "/nested").write(comparison)
        XCTAssertEqual(paths.map { ($0 as NSString).lastPathComponent }, ReportWriter.fileNames)
        let listing = try FileManager.default.contentsOfDirectory(atPath: directory + "/nested").sorted()
        XCTAssertEqual(listing, ReportWriter.fileNames.sorted(), "no temporary files left behind")

        let json = try Data(contentsOf: URL(fileURLWithPath: directory + "/nested/memory.json"))
        XCTAssertEqual(try MemoryDocument.decode(json).comparison, comparison)
        let summary = try String(contentsOfFile: directory + "/nested/summary.txt", encoding: .utf8)
        XCTAssertEqual(summary, TerminalSummary(comparison).render())
        let trace = try Data(contentsOf: URL(fileURLWithPath: directory + "/nested/trace.json"))
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: trace))
    }

    func testRewritingReplacesTheFilesAndIsReproducible() throws {
        let comparison = ScriptedRun.comparison()
        let writer = ReportWriter(directory: directory)
        try writer.write(comparison)
        let first = try Data(contentsOf: URL(fileURLWithPath: directory + "/memory.html"))
        try writer.write(comparison)
        let second = try Data(contentsOf: URL(fileURLWithPath: directory + "/memory.html"))
        XCTAssertEqual(first, second)

        var stamped = ReportWriter.Options()
        stamped.generatedAt = "2025-06-01T12:00:00Z"
        try ReportWriter(directory: directory, options: stamped).write(comparison)
        let json = try Data(contentsOf: URL(fileURLWithPath: directory + "/memory.json"))
        XCTAssertEqual(try MemoryDocument.decode(json).generatedAt, "2025-06-01T12:00:00Z")
        XCTAssertTrue(try String(contentsOfFile: directory + "/memory.html", encoding: .utf8).contains("generated 2025-06-01T12:00:00Z"))
    }

    func testUnwritableDirectoryFailsWithAClearError() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: directory, contents: Data("a file".utf8)))
        XCTAssertThrowsError(try ReportWriter(directory: directory + "/sub").write(ScriptedRun.comparison())) { error in
            XCTAssertTrue("\(error)".contains("could not write"), "\(error)")
            XCTAssertTrue("\(error)".contains(directory + "/sub"), "\(error)")
        }
    }
}
