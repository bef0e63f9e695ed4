import ArgumentParser
import Shards
import Training

struct ShardsInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a dataset's schema, splits, records, blocks, sizes and compression ratio.")

    @Argument(help: "Dataset folder.")
    var directory: String

    func run() throws { print(try DatasetInfo(directory: directory)) }
}

struct ShardsVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every CRC, zstd checksum, count and file hash; exit non-zero on any fault.")

    @Argument(help: "Dataset folder.")
    var directory: String

    func run() throws {
        let bar = ProgressReporter()
        let report = try DatasetVerifier.verify(directory: directory) { _, done, total in
            bar.update(title: "verifying", done: done, total: total)
        }
        bar.finish()
        for fault in report.faults { print("FAULT: \(fault)") }
        print("\(report.shards) shards, \(report.blocks) blocks, \(report.records) records, \(formatBytes(report.bytes)) checked: "
              + (report.isClean ? "all good" : "\(report.faults.count) fault\(report.faults.count == 1 ? "" : "s")"))
        if !report.isClean { throw ExitCode(1) }
    }
}
