import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `--schedule greedy` under SIGKILL: a run killed inside its first round, and one killed right
/// after the checkpoint that starts its second round, each resumed with the same flags and
/// `--resume`, end with a checkpoint byte-identical to an uninterrupted run's.
final class GreedyKillResumeCLITests: XCTestCase {
    func testGreedyRunKilledInsideARoundAndAtARoundBoundaryEndsByteIdentical() throws {
        let layerwise = try CommandLineTool.layerwise()
        let folder = try makeTemporaryFolder(self)
        let data = try convertedIDXDataset(layerwise, in: folder)
        // Two blocks, four epochs: rounds of two epochs (94 steps each), checkpoints every 5 steps
        // or (for the boundary) only at epoch ends.
        func arguments(_ run: String, checkpointEvery: Int) -> [String] {
            ["train", "--data", data, "--run", folder.appendingPathComponent(run).path, "--num-layers", "2", "--num-hidden", "64",
             "--schedule", "greedy", "--epochs", "4", "--batch-size", "32", "--milestones", "2",
             "--checkpoint-every", String(checkpointEvery), "--threads", "1", "--quiet"]
        }
        let reference = try CommandLineTool.run(layerwise, arguments("reference", checkpointEvery: 5))
        XCTAssertEqual(reference.status, 0, reference.all)
        XCTAssertTrue(reference.stdout.hasPrefix("schedule greedy: 2 rounds of 2, 2 epochs"), reference.stdout)
        let expected = try Data(contentsOf: folder.appendingPathComponent("reference/checkpoint.safetensors"))
        XCTAssertGreaterThan(expected.count, 100_000)

        /// The trainer state in a checkpoint's header records the round: `\"round\":1`.
        func inRound(_ round: Int, _ path: String) -> Bool {
            guard let handle = FileHandle(forReadingAtPath: path), let head = try? handle.read(upToCount: 1 << 16) else { return false }
            return String(decoding: head, as: UTF8.self).contains("\\\"round\\\":\(round)")
        }
        for (name, checkpointEvery, ready) in [("inside-round-1", 5, { (path: String) in inRound(0, path) }),
                                               ("round-boundary", 0, { (path: String) in inRound(1, path) })] {
            let run = folder.appendingPathComponent(name)
            let process = Process()
            process.executableURL = layerwise
            process.arguments = arguments(name, checkpointEvery: checkpointEvery)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let checkpoint = run.appendingPathComponent("checkpoint.safetensors").path
            let deadline = Date().addingTimeInterval(300)
            while !ready(checkpoint) && process.isRunning && Date() < deadline { usleep(2_000) }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal, "\(name): the run ended before it could be killed")
            let epochsBeforeKill = (try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?
                .split(separator: "\n").count ?? 0
            XCTAssertLessThan(epochsBeforeKill, 4, "\(name): the kill came after the run finished")

            let resumed = try CommandLineTool.run(layerwise, arguments(name, checkpointEvery: checkpointEvery) + ["--resume"])
            XCTAssertEqual(resumed.status, 0, resumed.all)
            let step = resumed.stdout.components(separatedBy: "(step ").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
            XCTAssertGreaterThan(step ?? 0, 0, "\(name): \(resumed.stdout)")
            if name == "round-boundary" { XCTAssertEqual(step, 188, "resumed where round 2 begins: \(resumed.stdout)") }
            let got = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
            XCTAssertTrue(got == expected, "\(name): the resumed run's checkpoint differs from the uninterrupted run's")
            let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            XCTAssertEqual(metrics.split(separator: "\n").count, 4, name)
        }
    }
}
