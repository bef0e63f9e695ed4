import ArgumentParser
import Benchmarks
import Tensors
import Training

/// `layerwise bench foundation`: GEMM at the MLP's shapes (our wrapper vs the BLAS directly)
/// and the memory ledger's overhead.
struct BenchFoundationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "foundation",
        abstract: "GEMM GFLOP/s at the MLP's shapes through the tensor wrapper and directly, and the ledger's overhead.")

    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?

    @Option(help: "Timed repeats per measurement; medians are reported.")
    var repeats: Int = 7

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if repeats < 1 { throw ValidationError("--repeats must be at least 1.") }
    }

    func run() throws {
        let report = FoundationBenchmark.run(.init(threads: threads ?? ProcessorCount.online, repeats: repeats))
        print(json ? try report.json() : report.table)
    }
}
