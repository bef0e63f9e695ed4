import Foundation
import XCTest

/// What a finished process printed and how it exited.
struct ToolOutput {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Both streams, for failure messages and for checks that do not care which stream a line took.
    var all: String { stdout + stderr }
}

/// Runs programs as a user would from a shell: arguments as given, output captured through
/// files (no pipe can fill up and stall the child), a time limit so a hung child fails the test.
enum CommandLineTool {
    /// The package root, three levels above this file (Tests/CLITests/CommandLineTool.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `layerwise` executable built next to the test bundle (`.build/<triple>/debug/`), or
    /// the path in LAYERWISE_BIN. Fails the calling test with the command to run when missing.
    static func layerwise(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        if let given = ProcessInfo.processInfo.environment["LAYERWISE_BIN"] {
            return URL(fileURLWithPath: given)
        }
        // On Linux the test bundle is the running executable; on macOS it is a bundle directory
        // inside the build folder. Either way `layerwise` sits in the same folder.
        let folders = [Bundle.main.executableURL?.deletingLastPathComponent(),
                       Bundle(for: BundleToken.self).bundleURL.deletingLastPathComponent(),
                       URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()].compactMap { $0 }
        for folder in folders {
            let candidate = folder.appendingPathComponent("layerwise")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let message = "the layerwise executable was not found in \(Set(folders.map(\.path)).sorted().joined(separator: " or ")); "
            + "build it with `swift build --build-tests` before `swift test`, or set LAYERWISE_BIN"
        XCTFail(message, file: file, line: line)
        throw CLITestError.missingExecutable(message)
    }

    /// Runs `executable` with `arguments` in `directory` and waits for it (at most `timeout` seconds).
    static func run(_ executable: URL, _ arguments: [String], in directory: URL? = nil,
                    environment: [String: String]? = nil, timeout: TimeInterval = 120) throws -> ToolOutput {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("cli-output-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate() }
        process.waitUntilExit()
        try out.close()
        try err.close()
        let output = ToolOutput(status: process.terminationStatus,
                                stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                                stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
        if timedOut { throw CLITestError.timedOut("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) ran over \(Int(timeout)) s; so far:\n\(output.all)") }
        return output
    }

    /// Runs a program found on PATH through /usr/bin/env; nil when it is not installed (env exits 127).
    static func runFromPath(_ name: String, _ arguments: [String], in directory: URL? = nil) throws -> ToolOutput? {
        let output = try run(URL(fileURLWithPath: "/usr/bin/env"), [name] + arguments, in: directory)
        return output.status == 127 ? nil : output
    }
}

enum CLITestError: Error, CustomStringConvertible {
    case missingExecutable(String)
    case timedOut(String)

    var description: String {
        switch self {
        case .missingExecutable(let message), .timedOut(let message): return message
        }
    }
}

private final class BundleToken {}
