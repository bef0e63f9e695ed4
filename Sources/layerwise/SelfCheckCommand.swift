import ArgumentParser
import Training

struct SelfCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck",
        abstract: "Allocate, multiply and free through the ledger and the BLAS, and report what the ledger saw.")

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?

    func run() throws {
        let report = try SelfCheck.run(threads: threads)
        print(report)
    }
}
