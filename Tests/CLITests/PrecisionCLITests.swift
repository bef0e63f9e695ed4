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

/// bf16 where the CPU has it: the planner prices the bf16 convolutions' workspace and profile
/// measures exactly that; a narrow vgg8b trains in bf16, records it in config.json and ends with
/// other weights than fp32's (the arithmetic changed); `--no-winograd` plans oneDNN's direct
/// convolutions.
final class BF16TrainingCLITests: XCTestCase {
    func testBF16IsPlannedMeasuredAndTrained() throws {
        let layerwise = try CommandLineTool.layerwise()
        let noWinograd = try CommandLineTool.run(layerwise, ["plan"] + PlanCLITests.model + ["--no-winograd"])
        XCTAssertEqual(noWinograd.status, 0, noWinograd.all)
        XCTAssertTrue(noWinograd.stdout.contains("conv engine dnnl,"), noWinograd.stdout)
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let cap = ProcessInfo.processInfo.environment["ONEDNN_MAX_CPU_ISA"] ?? ProcessInfo.processInfo.environment["DNNL_MAX_CPU_ISA"]
        guard flags.contains("avx512_bf16") || flags.contains("amx_bf16"), cap == nil else {
            throw XCTSkip("bf16 is refused here (no AVX512_BF16 or AMX-BF16, or an ISA cap): PrecisionCLITests checks the refusal")
        }
        let plan = try CommandLineTool.run(layerwise, ["plan"] + PlanCLITests.model + ["--precision", "bf16"])
        XCTAssertEqual(plan.status, 0, plan.all)
        XCTAssertTrue(plan.stdout.contains("bf16 convolutions") && plan.stdout.contains("conv engine dnnl-bf16"), plan.stdout)
        let predicted = try XCTUnwrap(PlanCLITests.predictedBytes(plan.stdout, mode: "local (predsim)"), plan.stdout)
        let folder = try makeTemporaryFolder(self)
        let profile = try CommandLineTool.run(layerwise, ["profile"] + PlanCLITests.model + ["--precision", "bf16", "--steps", "2",
                                                                                             "--out", folder.appendingPathComponent("profile").path],
                                              timeout: 300)
        XCTAssertEqual(profile.status, 0, profile.all)
        PlanCLITests.assertMeasuredExactly(profile.stdout, mode: "local (predsim)", bytes: predicted)

        // 16x16 images: vgg8b's first blocks run on 16x16 maps (256 positions: bf16).
        let data = try convertedIDXDataset(layerwise, in: folder, pair: IDXPair(count: 160, side: 16, classes: 5))
        func train(_ run: String, _ extra: [String]) throws -> Data {
            try trainNarrowVGG8b(layerwise, data: data, in: folder, run: run, extra)
        }
        XCTAssertNotEqual(try train("fp32", []), try train("bf16", ["--precision", "bf16"]), "bf16 arithmetic changes the weights")
        let config = try String(contentsOf: folder.appendingPathComponent("bf16/config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"precision\" : \"bf16\""), config)
        let metrics = try String(contentsOf: folder.appendingPathComponent("bf16/metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").filter { $0.contains("\"testError\"") }.count, 2, metrics)
    }
}
