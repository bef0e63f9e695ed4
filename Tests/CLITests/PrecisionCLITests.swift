import Foundation
import XCTest

/// `--precision bf16` is refused before any work starts, with a message naming what is missing
/// (on a CPU without AVX512_BF16 / AMX-BF16: those features; with them: oneDNN's ISA cap, or that
/// the build has no bf16 convolutions). `--precision fp32` is the default and runs.
final class PrecisionCLITests: XCTestCase {
    func testBF16IsRefusedWithTheMissingFeatureNamed() throws {
        let layerwise = try CommandLineTool.layerwise()
        var environment = ProcessInfo.processInfo.environment
        environment["ONEDNN_MAX_CPU_ISA"] = "AVX512_CORE"  // below bf16 wherever this runs
        let out = try CommandLineTool.run(layerwise, ["plan", "--model", "vgg8b", "--precision", "bf16"], environment: environment)
        XCTAssertNotEqual(out.status, 0, out.all)
        XCTAssertTrue(out.stderr.contains("--precision bf16"), out.stderr)
        let cpuHasBF16 = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512_bf16") ?? false
        XCTAssertTrue(out.stderr.contains(cpuHasBF16 ? "ONEDNN_MAX_CPU_ISA=AVX512_CORE" : "AVX512_BF16 or AMX-BF16"), out.stderr)

        let bad = try CommandLineTool.run(layerwise, ["plan", "--model", "vgg8b", "--precision", "fp16"])
        XCTAssertNotEqual(bad.status, 0, bad.all)
        XCTAssertTrue(bad.stderr.contains("--precision fp16 is not one of: fp32, bf16"), bad.stderr)
    }
}
