import Foundation
import XCTest

/// `--help` is the manual: every command and subcommand prints its usage and exits 0.
final class HelpCLITests: XCTestCase {
    /// Every command path (["shards", "convert", "idx"], ...), read from ArgumentParser's own
    /// description of the tool so that a subcommand added later is covered without editing this test.
    private func commandPaths(_ layerwise: URL) throws -> [[String]] {
        let dump = try CommandLineTool.run(layerwise, ["--experimental-dump-help"])
        XCTAssertEqual(dump.status, 0, dump.all)
        let root = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any]
        var paths = [[String]]()
        func walk(_ command: [String: Any], _ path: [String]) {
            paths.append(path)
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                walk(sub, path + [name])
            }
        }
        walk(root?["command"] as? [String: Any] ?? [:], [])
        return paths
    }

    func testHelpWorksForEverySubcommand() throws {
        let layerwise = try CommandLineTool.layerwise()
        let paths = try commandPaths(layerwise)
        for expected in [["shards", "convert", "idx"], ["shards", "convert", "cifar"], ["shards", "convert", "npy"],
                         ["shards", "convert", "csv"], ["shards", "info"], ["shards", "verify"], ["shards", "cat"], ["shards", "bench"]] {
            XCTAssertTrue(paths.contains(expected), "\(expected.joined(separator: " ")) is a subcommand: \(paths)")
        }
        for path in paths {
            let help = try CommandLineTool.run(layerwise, path + ["--help"])
            let name = (["layerwise"] + path).joined(separator: " ")
            XCTAssertEqual(help.status, 0, "\(name) --help:\n\(help.all)")
            XCTAssertTrue(help.stdout.contains("USAGE: \(name)"), "\(name) --help prints its usage:\n\(help.all)")
        }
    }

    func testBenchHelpDocumentsTheLoaderOptions() throws {
        let help = try CommandLineTool.run(try CommandLineTool.layerwise(), ["shards", "bench", "--help"])
        XCTAssertEqual(help.status, 0, help.all)
        for option in ["--train-rate", "--loader-threads", "--batch-size", "--no-augment"] {
            XCTAssertTrue(help.stdout.contains(option), "\(option) in:\n\(help.stdout)")
        }
    }
}
