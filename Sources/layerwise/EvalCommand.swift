import ArgumentParser
import MemoryLedger
import Reports
import Training

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Report the test error of a run's (or a checkpoint file's) model on a split.")

    @Option(name: .customLong("run"), help: "Run folder (uses its checkpoint and config).")
    var runFolder: String?
    @Option(help: "A checkpoint file (instead of --run).")
    var checkpoint: String?
    @Option(help: "Dataset folder (default: the run's).")
    var data: String?
    @Option(help: "Split to evaluate.")
    var split: String = "test"
    @Option(help: "Batch size.")
    var batchSize: Int = 500
    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        guard (runFolder == nil) != (checkpoint == nil) else { throw ValidationError("give exactly one of --run or --checkpoint") }
        if checkpoint != nil && data == nil { throw ValidationError("--checkpoint needs --data") }
    }

    func run() throws {
        let result = try Evaluation.run(runFolder: runFolder, checkpoint: checkpoint, data: data, split: split,
                                        batchSize: batchSize, threads: threads)
        print("\(result.model): \(split) error \(String(format: "%.2f", result.error))% on \(result.records) records")
        let peak = result.ledgerPeak
        let parts = Category.allCases.filter { peak.bytes($0) > 0 }.map { "\($0) \(ByteFormat.human(peak.bytes($0)))" }
        print("ledger peak \(ByteFormat.human(peak.total)): " + parts.joined(separator: ", "))
    }
}
