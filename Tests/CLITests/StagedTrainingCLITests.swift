import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `layerwise train --stages S` under `mpirun -np S`, as a user runs it on one machine: the
/// blocks pipelined over S processes end with a checkpoint byte-identical to the one-process
/// run's (weights, BatchNorm statistics, heads, optimizer moments, trainer state), a staged run
/// killed in the middle resumes to the same bytes (staged or in one process), and every refusal
/// names the flag. The MPI cases skip, saying why, when the executable was built without the
/// MPI trait or mpirun is missing, and fail instead under LAYERWISE_REQUIRE_MPI=1 (tools/test.sh
/// sets it when it built with MPI).
final class StagedTrainingCLITests: XCTestCase {
    // MARK: the same training in stages

    func testTwoAndThreeStagesEndByteIdenticalToOneProcess() throws {
        let layerwise = try CommandLineTool.layerwise()
        try requireMPI(layerwise)
        let folder = try makeTemporaryFolder(self)
        let data = try convertedIDXDataset(layerwise, in: folder)
        let arguments = ["train", "--data", data, "--num-layers", "3", "--num-hidden", "48", "--epochs", "2", "--batch-size", "32",
                         "--train-limit", "320", "--test-limit", "300", "--milestones", "1", "--checkpoint-every", "3",
                         "--threads", "1", "--quiet"]
        let reference = try CommandLineTool.run(layerwise, arguments + ["--run", folder.appendingPathComponent("one").path])
        XCTAssertEqual(reference.status, 0, reference.all)
        let expected = try Data(contentsOf: folder.appendingPathComponent("one/checkpoint.safetensors"))
        XCTAssertGreaterThan(expected.count, 50_000)
        for stages in [2, 3] {
            let run = folder.appendingPathComponent("stages\(stages)")
            // 3 stages as `--stages auto` (as many stages as mpirun started), with the memory report.
            let report = folder.appendingPathComponent("report\(stages)")
            let staged = try mpirun(stages, layerwise, arguments + ["--run", run.path]
                                    + (stages == 3 ? ["--stages", "auto", "--memory-report", report.path] : ["--stages", "\(stages)"]))
            XCTAssertEqual(staged.status, 0, staged.all)
            try assertPrintsThePlannedStages(staged, layerwise, ["--data", data, "--num-layers", "3", "--num-hidden", "48", "--batch-size", "32"],
                                             stages: stages)
            let got = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
            XCTAssertTrue(got == expected, "\(stages) stages: the checkpoint differs from the one-process run's")
            // The epoch's statistics travel with the batches: the last stage reports what one process does.
            XCTAssertEqual(try trainingFigures(run), try trainingFigures(folder.appendingPathComponent("one")), "\(stages) stages")
            let parts = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.contains(".stage-") }
            XCTAssertEqual(parts, [], "the parts are merged into the checkpoint and removed")
            if stages == 3 {
                // One report of the three processes: a lane per stage in memory.html and trace.json.
                let summary = try String(contentsOf: report.appendingPathComponent("summary.txt"), encoding: .utf8)
                XCTAssertTrue(summary.contains("3 stages, one process each: ledger peak stage 1/3"), summary)
                for file in ["memory.json", "memory.html", "trace.json"] {
                    let text = try String(contentsOf: report.appendingPathComponent(file), encoding: .utf8)
                    for s in 1...3 { XCTAssertTrue(text.contains("stage \(s)/3 ("), "\(file) has no lane of stage \(s)") }
                }
                let left = try FileManager.default.contentsOfDirectory(atPath: report.path).filter { $0.hasPrefix("stage-") }
                XCTAssertEqual(left, [], "the stages' profiles are merged into the report and removed")
            }
        }
    }

    /// A VGG (conv blocks, pooling, a Linear block) in two stages, the cut between conv blocks.
    func testConvNetworkInTwoStagesEndsByteIdenticalToOneProcess() throws {
        let layerwise = try CommandLineTool.layerwise()
        try requireMPI(layerwise)
        let folder = try makeTemporaryFolder(self)
        let data = try convertedIDXDataset(layerwise, in: folder, pair: IDXPair(count: 200, side: 16, classes: 4))
        let arguments = ["train", "--data", data, "--model", "vgg8b", "--feat-mult", "0.0625", "--num-hidden", "32", "--epochs", "1",
                         "--batch-size", "16", "--train-limit", "64", "--test-limit", "32", "--threads", "1", "--quiet"]
        let reference = try CommandLineTool.run(layerwise, arguments + ["--run", folder.appendingPathComponent("one").path])
        XCTAssertEqual(reference.status, 0, reference.all)
        let run = folder.appendingPathComponent("stages2")
        let staged = try mpirun(2, layerwise, arguments + ["--run", run.path, "--stages", "2"])
        XCTAssertEqual(staged.status, 0, staged.all)
        try assertPrintsThePlannedStages(staged, layerwise, ["--data", data, "--model", "vgg8b", "--feat-mult", "0.0625", "--num-hidden", "32",
                                                             "--batch-size", "16"], stages: 2)
        XCTAssertTrue(staged.stdout.contains("stage 1/2 (blocks 1-2)"), "the cut falls between conv blocks:\n\(staged.all)")
        let expected = try Data(contentsOf: folder.appendingPathComponent("one/checkpoint.safetensors"))
        let got = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
        XCTAssertTrue(got == expected, "vgg8b in 2 stages: the checkpoint differs from the one-process run's")
    }

    // MARK: checkpoints and resume across stages

    /// Kills one stage's process (SIGKILL) once the first staged checkpoint exists; mpirun ends
    /// the others. The run then resumes in stages and, from a copy, in one process: both end
    /// with the uninterrupted run's bytes, and `eval` reads the staged run's checkpoint.
    func testStagedRunKilledMidEpochResumesByteIdenticalStagedOrInOneProcess() throws {
        let layerwise = try CommandLineTool.layerwise()
        try requireMPI(layerwise)
        let folder = try makeTemporaryFolder(self)
        let data = try convertedIDXDataset(layerwise, in: folder)
        let arguments = ["train", "--data", data, "--num-layers", "3", "--num-hidden", "48", "--epochs", "2", "--batch-size", "32",
                         "--train-limit", "1920", "--test-limit", "300", "--milestones", "1", "--checkpoint-every", "4",
                         "--threads", "1", "--quiet"]
        let reference = try CommandLineTool.run(layerwise, arguments + ["--run", folder.appendingPathComponent("reference").path])
        XCTAssertEqual(reference.status, 0, reference.all)
        let expected = try Data(contentsOf: folder.appendingPathComponent("reference/checkpoint.safetensors"))

        let killed = folder.appendingPathComponent("killed")
        let checkpoint = killed.appendingPathComponent("checkpoint.safetensors").path
        let launcher = Process()
        launcher.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        launcher.arguments = ["mpirun"] + mpirunFlags(2) + [layerwise.path] + arguments + ["--run", killed.path, "--stages", "2"]
        launcher.environment = mpirunEnvironment
        launcher.standardOutput = FileHandle.nullDevice
        launcher.standardError = FileHandle.nullDevice
        try launcher.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && launcher.isRunning && Date() < deadline { usleep(2_000) }
        // The first stage's process: the one that reads the data.
        let victims = processes(running: layerwise, under: launcher.processIdentifier)
        XCTAssertEqual(victims.count, 2, "mpirun should run the two stages as its children")
        if let first = victims.min() { kill(first, SIGKILL) }
        launcher.waitUntilExit()
        XCTAssertNotEqual(launcher.terminationStatus, 0, "the staged run ended before a stage could be killed")
        let epochsBeforeKill = (try? String(contentsOf: killed.appendingPathComponent("metrics.jsonl"), encoding: .utf8))?
            .split(separator: "\n").count ?? 0
        XCTAssertLessThan(epochsBeforeKill, 2, "the kill came after the run finished: nothing was resumed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint))
        let copy = folder.appendingPathComponent("killed-one-process")
        try FileManager.default.copyItem(at: killed, to: copy)

        let resumed = try mpirun(2, layerwise, arguments + ["--run", killed.path, "--stages", "2", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.all)
        XCTAssertTrue(resumed.stdout.contains("resuming "), resumed.all)
        XCTAssertFalse(resumed.stdout.contains("(step 0)"), "the staged run restarted instead of resuming:\n\(resumed.all)")
        XCTAssertTrue(try Data(contentsOf: URL(fileURLWithPath: checkpoint)) == expected,
                      "the staged run resumed in stages differs from the uninterrupted run")

        let oneProcess = try CommandLineTool.run(layerwise, arguments + ["--run", copy.path, "--resume"])
        XCTAssertEqual(oneProcess.status, 0, oneProcess.all)
        XCTAssertTrue(try Data(contentsOf: copy.appendingPathComponent("checkpoint.safetensors")) == expected,
                      "the staged run resumed in one process differs from the uninterrupted run")

        let evaluated = try CommandLineTool.run(layerwise, ["eval", "--run", killed.path, "--data", data, "--split", "test"])
        let evaluatedReference = try CommandLineTool.run(layerwise, ["eval", "--run", folder.appendingPathComponent("reference").path,
                                                                     "--data", data, "--split", "test"])
        XCTAssertEqual(evaluated.status, 0, evaluated.all)
        XCTAssertEqual(evaluated.stdout.components(separatedBy: "error").last, evaluatedReference.stdout.components(separatedBy: "error").last)
    }

    // MARK: refusals

    func testStagesRefuseBackpropGreedyAndMoreStagesThanBlocksNamingTheFlag() throws {
        let layerwise = try CommandLineTool.layerwise()
        let folder = try makeTemporaryFolder(self)
        let base = ["train", "--data", folder.path, "--run", folder.appendingPathComponent("run").path, "--num-layers", "3"]
        let cases: [([String], String)] = [
            (["--stages", "2", "--loss", "backprop"], "--stages needs a local loss"),
            (["--stages", "2", "--schedule", "greedy"], "the greedy schedule trains one block at a time"),
            (["--stages", "4"], "--stages 4 is more than the model's 3 hidden blocks"),
            (["--stages", "0"], "--stages must be at least 1"),
        ]
        for (flags, message) in cases {
            let refused = try CommandLineTool.run(layerwise, base + flags)
            XCTAssertNotEqual(refused.status, 0, flags.joined(separator: " "))
            XCTAssertTrue(refused.all.contains(message), "\(flags.joined(separator: " ")): \(refused.all)")
        }
        // Outside mpirun: the command to run, or (without the MPI trait) how to build it.
        let alone = try CommandLineTool.run(layerwise, base + ["--stages", "2"])
        XCTAssertNotEqual(alone.status, 0)
        XCTAssertTrue(alone.all.contains("mpirun -np 2 layerwise train") || alone.all.contains("built without MPI"), alone.all)
    }

    func testStagesRefuseAnotherNumberOfProcessesThanStages() throws {
        let layerwise = try CommandLineTool.layerwise()
        try requireMPI(layerwise)
        let folder = try makeTemporaryFolder(self)
        let refused = try mpirun(2, layerwise, ["train", "--data", folder.path, "--run", folder.appendingPathComponent("run").path,
                                                "--num-layers", "3", "--stages", "3"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.all.contains("--stages 3 but mpirun started 2 processes"), refused.all)
    }

    // MARK: helpers

    /// The staged run prints each stage's blocks and predicted peak as `layerwise plan --stages` does.
    private func assertPrintsThePlannedStages(_ run: ToolOutput, _ layerwise: URL, _ model: [String], stages: Int,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        let planned = try CommandLineTool.run(layerwise, ["plan"] + model + ["--threads", "1", "--stages", "\(stages)"])
        XCTAssertEqual(planned.status, 0, planned.all, file: file, line: line)
        let lines = planned.stdout.split(separator: "\n").filter { $0.hasPrefix("stage ") }
        XCTAssertEqual(lines.count, stages, planned.stdout, file: file, line: line)
        for l in lines { XCTAssertTrue(run.stdout.contains(l), "\(l) not printed by the run:\n\(run.all)", file: file, line: line) }
    }

    /// Skips (or, under LAYERWISE_REQUIRE_MPI=1, fails) when mpirun or the MPI build is missing.
    private func requireMPI(_ layerwise: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        var reason: String?
        let probe = try CommandLineTool.run(layerwise, ["train", "--stages", "2", "--data", "/nonexistent", "--num-layers", "2"])
        if probe.all.contains("built without MPI") {
            reason = "layerwise was built without the MPI trait (swift build --build-tests --traits MPI)"
        } else if try CommandLineTool.runFromPath("mpirun", ["--version"]) == nil {
            reason = "mpirun is not installed (tools/setup.sh installs openmpi-bin and libopenmpi-dev)"
        }
        guard let reason else { return }
        if ProcessInfo.processInfo.environment["LAYERWISE_REQUIRE_MPI"] == "1" {
            XCTFail("LAYERWISE_REQUIRE_MPI=1 but \(reason)", file: file, line: line)
            throw CLITestError.missingExecutable(reason)
        }
        throw XCTSkip(reason)
    }

    /// One machine, more processes than cores, and root allowed (CI runs as root).
    private func mpirunFlags(_ processes: Int) -> [String] { ["-np", "\(processes)", "--oversubscribe"] }

    private var mpirunEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        return environment
    }

    private func mpirun(_ processes: Int, _ layerwise: URL, _ arguments: [String]) throws -> ToolOutput {
        try CommandLineTool.run(URL(fileURLWithPath: "/usr/bin/env"), ["mpirun"] + mpirunFlags(processes) + [layerwise.path] + arguments,
                                environment: mpirunEnvironment, timeout: 180)
    }

    /// The processes running `executable` among the descendants of `root` (mpirun's children).
    private func processes(running executable: URL, under root: pid_t) -> [pid_t] {
        var parents: [pid_t: pid_t] = [:], programs: [pid_t: String] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"),
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            programs[pid] = String(decoding: cmdline.prefix { $0 != 0 }, as: UTF8.self)
            let rest = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            if rest.count > 1, let parent = pid_t(rest[1]) { parents[pid] = parent }
        }
        func descends(_ pid: pid_t) -> Bool {
            var p = parents[pid]
            while let q = p, q > 1 { if q == root { return true }; p = parents[q] }
            return false
        }
        return programs.filter { $0.value == executable.path && descends($0.key) }.map(\.key)
    }

    /// Per epoch: train loss, train error and every block's losses, from metrics.jsonl.
    private func trainingFigures(_ run: URL) throws -> [String] {
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        return try lines.map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let figures = ["trainLoss", "trainError", "layers", "testError"].map { object[$0] ?? NSNull() }
            return String(decoding: try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys]), as: UTF8.self)
        }
    }
}
