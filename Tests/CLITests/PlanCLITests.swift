import Foundation
import XCTest

/// `layerwise plan` prints the shape table and a prediction that `layerwise profile`, run as a
/// user would (fresh processes, the CLI's default conv engine), measures to the byte.
final class PlanCLITests: XCTestCase {
    static let model = ["--model", "vgg8b", "--feat-mult", "0.0625", "--num-hidden", "32", "--dim-in-decoder", "128",
                        "--batch-size", "12"]

    /// The predicted peak in bytes from a "predicted ledger peak, NAME ...: X MiB (N bytes)" line.
    static func predictedBytes(_ text: String, mode: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix("predicted ledger peak, \(mode)") {
            guard let batch = line.range(of: ", batch "), let open = line.range(of: " (", range: batch.upperBound..<line.endIndex), let close = line.range(of: " bytes)", range: open.upperBound..<line.endIndex) else { continue }
            return Int(line[open.upperBound..<close.lowerBound].replacingOccurrences(of: ",", with: ""))
        }
        return nil
    }

    /// 1234567 -> "1,234,567", as the tool prints exact byte counts.
    static func grouped(_ n: Int) -> String {
        var digits = String(n), out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return digits + out
    }

    /// Asserts that `profile`'s output reports `mode`'s predicted peak of `bytes` measured to the byte.
    static func assertMeasuredExactly(_ profile: String, mode: String, bytes: Int, file: StaticString = #filePath, line: UInt = #line) {
        let number = grouped(bytes)
        XCTAssertTrue(profile.contains("planner, \(mode): predicted \(number) bytes, measured \(number) bytes without the loader (exact)"),
                      "\(mode) \(number):\n\(profile)", file: file, line: line)
    }

    func testPlanPrintsTheTableAndProfileMeasuresItsPredictionExactly() throws {
        let layerwise = try CommandLineTool.layerwise()
        let plan = try CommandLineTool.run(layerwise, ["plan"] + Self.model + ["--input-shape", "16x16x1", "--classes", "4", "--chunk", "5"])
        XCTAssertEqual(plan.status, 0, plan.all)
        for layer in ["conv 1->8 16x16", "conv 8->16 16x16, pool", "linear 32", "output 4", "W_k"] {
            XCTAssertTrue(plan.stdout.contains(layer), "\(layer) missing:\n\(plan.stdout)")
        }
        let local = try XCTUnwrap(Self.predictedBytes(plan.stdout, mode: "local (predsim, chunks of 5)"), plan.stdout)
        let backprop = try XCTUnwrap(Self.predictedBytes(plan.stdout, mode: "backprop"), plan.stdout)
        XCTAssertLessThan(local, backprop)

        // profile's generated inputs are 28x28x1 with 10 classes: plan that shape, then measure it.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("plan-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let planned = try CommandLineTool.run(layerwise, ["plan"] + Self.model + ["--chunk", "5"])
        let profile = try CommandLineTool.run(layerwise, ["profile"] + Self.model + ["--chunk", "5", "--steps", "2", "--out", scratch.path],
                                              timeout: 300)
        XCTAssertEqual(profile.status, 0, profile.all)
        for mode in ["local (predsim, chunks of 5)", "backprop"] {
            let predicted = try XCTUnwrap(Self.predictedBytes(planned.stdout, mode: mode), planned.stdout)
            Self.assertMeasuredExactly(profile.stdout, mode: mode, bytes: predicted)
        }
    }

    func testABudgetBelowWhatAnyChunkNeedsIsRefusedWithTheFloor() throws {
        let layerwise = try CommandLineTool.layerwise()
        let out = try CommandLineTool.run(layerwise, ["plan"] + Self.model + ["--memory-budget", "1MiB"])
        XCTAssertNotEqual(out.status, 0)
        XCTAssertTrue(out.all.contains("no chunk size goes below"), out.all)
        XCTAssertTrue(out.all.contains("--memory-budget 1.0 MiB"), out.all)
    }

    /// `--allow-lean-state` under a budget that fp32 moments miss at every chunk size: plan and
    /// profile both choose bf16 moments for local mode and say so, and profile measures the
    /// prediction of that choice to the byte. Without the flag the budget is refused.
    func testAllowLeanStateChoosesBF16MomentsThatProfileMeasuresExactly() throws {
        let layerwise = try CommandLineTool.layerwise()
        let model = ["--model", "mlp", "--num-hidden", "256", "--batch-size", "32"]
        func predicted(_ args: [String], mode: String = "local (predsim)") throws -> Int {
            let out = try CommandLineTool.run(layerwise, ["plan"] + model + args)
            XCTAssertEqual(out.status, 0, out.all)
            return try XCTUnwrap(Self.predictedBytes(out.stdout, mode: mode), out.stdout)
        }
        let bf16 = try predicted(["--optimizer-state", "bf16"])
        XCTAssertLessThan(bf16, try predicted(["--optimizer-state", "fp32", "--chunk", "1"], mode: "local (predsim, chunks of 1)"))
        let budget = String(bf16 + (72 << 20))  // profile's process overhead is 72 MiB
        let refused = try CommandLineTool.run(layerwise, ["plan"] + model + ["--memory-budget", budget + "B", "--command", "profile"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.all.contains("--allow-lean-state lets the planner store"), refused.all)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("lean-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let profile = try CommandLineTool.run(layerwise, ["profile"] + model + ["--memory-budget", budget + "B", "--allow-lean-state",
                                                                                 "--steps", "2", "--out", scratch.path], timeout: 300)
        XCTAssertEqual(profile.status, 0, profile.all)
        XCTAssertTrue(profile.stdout.contains("optimizer state bf16 (--allow-lean-state)"), profile.stdout)
        Self.assertMeasuredExactly(profile.stdout, mode: "local (predsim)", bytes: bf16)
        let flagAlone = try CommandLineTool.run(layerwise, ["plan"] + model + ["--allow-lean-state"])
        XCTAssertNotEqual(flagAlone.status, 0)
        XCTAssertTrue(flagAlone.all.contains("--allow-lean-state lets the --memory-budget planner"), flagAlone.all)
    }

    /// `--sim-output keep`: plan predicts more memory than recomputing; profile under a budget
    /// that fits it chooses to keep and measures that prediction to the byte; two trainings of a
    /// narrow vgg8b, recomputing and keeping, end with the same checkpoint bytes, and the kept
    /// run's config.json says so; --chunk with keep is refused by name.
    func testKeptSimOutputIsPlannedMeasuredExactlyAndTrainsTheSameBytes() throws {
        let layerwise = try CommandLineTool.layerwise()
        // batch 32: a sim head's working set is the step's largest
        let model = Array(Self.model.dropLast(2)) + ["--batch-size", "32"]
        func predicted(_ args: [String]) throws -> Int {
            let out = try CommandLineTool.run(layerwise, ["plan"] + model + args)
            XCTAssertEqual(out.status, 0, out.all)
            return try XCTUnwrap(Self.predictedBytes(out.stdout, mode: "local (predsim)"), out.stdout)
        }
        let kept = try predicted(["--sim-output", "keep"]), recomputed = try predicted([])
        XCTAssertGreaterThan(kept, recomputed)
        let folder = try makeTemporaryFolder(self)
        let profile = try CommandLineTool.run(layerwise, ["profile"] + model + ["--memory-budget", String(kept + (72 << 20)) + "B",
                                                                                      "--steps", "2", "--out", folder.appendingPathComponent("profile").path],
                                              timeout: 300)
        XCTAssertEqual(profile.status, 0, profile.all)
        XCTAssertTrue(profile.stdout.contains("(--sim-output keep)"), profile.stdout)
        Self.assertMeasuredExactly(profile.stdout, mode: "local (predsim)", bytes: kept)

        // 16x16 images: vgg8b halves the image four times
        let data = try convertedIDXDataset(layerwise, in: folder, pair: IDXPair(count: 160, side: 16, classes: 5))
        func train(_ run: String, _ extra: [String]) throws -> Data {
            try trainNarrowVGG8b(layerwise, data: data, in: folder, run: run, extra)
        }
        XCTAssertEqual(try train("recompute", []), try train("keep", ["--sim-output", "keep"]), "keeping s changes no bit")
        let config = try String(contentsOf: folder.appendingPathComponent("keep/config.json"), encoding: .utf8)
        XCTAssertTrue(config.contains("\"simOutput\" : \"keep\""), config)
        let refused = try CommandLineTool.run(layerwise, ["plan"] + Self.model + ["--sim-output", "keep", "--chunk", "4"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.all.contains("--sim-output keep holds each sim head's output whole; --chunk 4"), refused.all)
    }

    /// `profile --schedule greedy --round all` walks every round: the measured peak is the
    /// planner's largest round to the byte, and the trace and the HTML timeline mark where each
    /// round begins.
    func testGreedyProfileOfEveryRoundMarksTheRoundsAndMeasuresTheLargest() throws {
        let layerwise = try CommandLineTool.layerwise()
        let model = ["--model", "mlp", "--num-hidden", "64", "--batch-size", "16", "--schedule", "greedy"]
        let plan = try CommandLineTool.run(layerwise, ["plan"] + model)
        XCTAssertEqual(plan.status, 0, plan.all)
        let largest = try XCTUnwrap(plan.stdout.split(separator: "\n").drop { !$0.hasPrefix("the greedy run's peak") }.dropFirst().first)
        let mode = try XCTUnwrap(largest.range(of: "local (predsim, greedy round ").map { String(largest[$0.lowerBound...].prefix { $0 != ")" }) + ")" })
        let predicted = try XCTUnwrap(Self.predictedBytes(plan.stdout, mode: mode), plan.stdout)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rounds-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let profile = try CommandLineTool.run(layerwise, ["profile"] + model + ["--round", "all", "--steps", "2", "--out", scratch.path],
                                              timeout: 300)
        XCTAssertEqual(profile.status, 0, profile.all)
        XCTAssertTrue(profile.stdout.contains("greedy schedule: all 3 rounds, 2 steps each"), profile.stdout)
        Self.assertMeasuredExactly(profile.stdout, mode: mode, bytes: predicted)
        let trace = try String(contentsOf: scratch.appendingPathComponent("trace.json"), encoding: .utf8)
        let html = try String(contentsOf: scratch.appendingPathComponent("memory.html"), encoding: .utf8)
        for round in 1...3 {
            XCTAssertTrue(trace.contains("\"round \(round) begins (block \(round - 1) trains)\""), "round \(round) not in trace.json")
            XCTAssertTrue(html.contains(">round \(round)</text>"), "round \(round) not in memory.html")
        }
        let bad = try CommandLineTool.run(layerwise, ["profile"] + model + ["--round", "4"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.all.contains("give a round in 1...3"), bad.all)
    }
}
