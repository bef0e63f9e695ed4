import Foundation
import XCTest

/// The process-level proof (opt-in: LAYERWISE_CGROUP_TESTS=1, root, a writable memory cgroup):
/// tools/memory-cap.sh measures local and backprop (mlp 4x1024, pred, batch 4096) in their own
/// cgroups, sets a cap between the two peaks and runs both under it: local must finish and
/// backprop must be killed by the cap.
final class MemoryCapTests: XCTestCase {
    func testLocalFitsUnderACapThatKillsBackprop() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["LAYERWISE_CGROUP_TESTS"] == "1",
                          "opt-in: set LAYERWISE_CGROUP_TESTS=1 (needs root and a writable memory cgroup)")
        let v1 = "/sys/fs/cgroup/memory", v2 = "/sys/fs/cgroup"
        let writable = (FileManager.default.fileExists(atPath: v1 + "/memory.limit_in_bytes") && access(v1, W_OK) == 0)
            || (FileManager.default.fileExists(atPath: v2 + "/cgroup.controllers") && access(v2, W_OK) == 0)
        try XCTSkipUnless(writable, "no writable memory cgroup (v1 \(v1) or v2 \(v2)); run as root where cgroups are mounted read-write")

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let binary = ["release", "debug"].map { "\(root)/.build/\($0)/layerwise" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        let executable = try XCTUnwrap(binary, "build the CLI first: swift build -c release")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["\(root)/tools/memory-cap.sh"]
        process.environment = ProcessInfo.processInfo.environment.merging(["LAYERWISE": executable]) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        print(output)
        let result = try XCTUnwrap(output.split(separator: "\n").last { $0.hasPrefix("RESULT ") }, "no RESULT line:\n\(output)")
        var fields: [String: Int] = [:]
        for pair in result.dropFirst("RESULT ".count).split(separator: " ") {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let value = Int(parts[1]) { fields[String(parts[0])] = value }
        }
        XCTAssertEqual(fields["local_exit"], 0, "local must finish under the cap")
        XCTAssertEqual(fields["backprop_exit"], 137, "backprop must be killed by the cap (SIGKILL)")
        let cap = try XCTUnwrap(fields["cap"]), localPeak = try XCTUnwrap(fields["local_peak"]), backpropPeak = try XCTUnwrap(fields["backprop_peak"])
        XCTAssertLessThan(localPeak, cap)
        XCTAssertLessThan(cap, backpropPeak)
        // The ledger agrees on the direction: backprop books more than local for this model.
        XCTAssertLessThan(try XCTUnwrap(fields["local_ledger"]), try XCTUnwrap(fields["backprop_ledger"]))
        XCTAssertEqual(process.terminationStatus, 0)
    }
}
