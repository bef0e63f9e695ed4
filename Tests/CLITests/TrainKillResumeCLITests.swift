import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The user's story of `--resume`: a `layerwise train` process killed with SIGKILL in the middle
/// of an epoch, started again with the same flags and `--resume`, ends with a checkpoint that is
/// byte-identical to the one of a run that was never interrupted (weights, optimizer moments, BN
/// statistics and trainer state alike), with fp32 and with 8-bit optimizer state.
final class TrainKillResumeCLITests: XCTestCase {
    func testRunKilledMidEpochAndResumedEndsByteIdenticalToAnUninterruptedRun() throws {
        let layerwise = try CommandLineTool.layerwise()
        let folder = try makeTemporaryFolder(self)
        let data = try convertedIDXDataset(layerwise, in: folder)
        for state in ["fp32", "int8"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(state), withIntermediateDirectories: true)
            try killAndResume(layerwise, data: data, folder: folder.appendingPathComponent(state), state: state)
        }
    }

    private func killAndResume(_ layerwise: URL, data: String, folder: URL, state: String) throws {
        func arguments(_ run: String) -> [String] {
            ["train", "--data", data, "--run", folder.appendingPathComponent(run).path, "--num-layers", "2", "--num-hidden", "64",
             "--epochs", "3", "--batch-size", "32", "--milestones", "2", "--checkpoint-every", "5", "--threads", "1", "--quiet",
             "--optimizer-state", state]
        }

        let reference = try CommandLineTool.run(layerwise, arguments("reference"))
        XCTAssertEqual(reference.status, 0, reference.all)

        // Start the same run and SIGKILL it as soon as its first checkpoint (step 5 of 94) exists.
        let killedRun = folder.appendingPathComponent("killed")
        let process = Process()
        process.executableURL = layerwise
        process.arguments = arguments("killed")
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let checkpoint = killedRun.appendingPathComponent("checkpoint.safetensors").path
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && process.isRunning && Date() < deadline {
            usleep(2_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the run ended before it could be killed")
        let epochsBeforeKill = (try? String(contentsOf: killedRun.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?
            .split(separator: "\n").count ?? 0
        XCTAssertLessThan(epochsBeforeKill, 3, "the kill came after the run finished: nothing was resumed")

        let resumed = try CommandLineTool.run(layerwise, arguments("killed") + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.all)
        // It continued from the checkpoint, not from step 0 (a restart from scratch would end with
        // the same bytes too, since every draw is seeded).
        let step = resumed.stdout.components(separatedBy: "(step ").dropFirst().first.flatMap { Int($0.prefix { $0.isNumber }) }
        XCTAssertNotNil(step, resumed.stdout)
        XCTAssertGreaterThan(step ?? 0, 0, resumed.stdout)
        let expected = try Data(contentsOf: folder.appendingPathComponent("reference/checkpoint.safetensors"))
        let got = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        XCTAssertGreaterThan(expected.count, state == "fp32" ? 100_000 : 50_000)
        XCTAssertTrue(got == expected, "\(state): the resumed run's checkpoint differs from the uninterrupted run's")
        let metrics = try String(contentsOf: killedRun.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(metrics.split(separator: "\n").count, 3)
    }
}
