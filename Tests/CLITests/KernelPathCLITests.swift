import Foundation
import XCTest

/// LAYERWISE_KERNELS picks the elementwise kernels' path; a value that is no path (or one the
/// CPU cannot run) is named in a warning and the tool carries on with the CPU's own choice.
final class KernelPathCLITests: XCTestCase {
    func testAnUnknownKernelPathIsNamedInAWarningAndTheToolStillRuns() throws {
        let layerwise = try CommandLineTool.layerwise()
        var environment = ProcessInfo.processInfo.environment
        environment["LAYERWISE_KERNELS"] = "avx9000"
        let out = try CommandLineTool.run(layerwise, ["shards", "--help"], environment: environment)
        XCTAssertEqual(out.status, 0, out.all)
        XCTAssertTrue(out.stderr.contains("LAYERWISE_KERNELS=avx9000 is not a kernel path this CPU runs"), out.stderr)
        XCTAssertTrue(out.stderr.contains("generic"), "the warning lists the paths that run: \(out.stderr)")

        environment["LAYERWISE_KERNELS"] = "generic"
        let forced = try CommandLineTool.run(layerwise, ["shards", "--help"], environment: environment)
        XCTAssertEqual(forced.status, 0, forced.all)
        XCTAssertFalse(forced.stderr.contains("LAYERWISE_KERNELS"), forced.stderr)
    }
}
