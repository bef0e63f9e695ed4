import ArgumentParser
import Benchmarks
import Foundation

/// `layerwise bench optimizer`: one optimizer step per parameter in each state format.
struct BenchOptimizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "optimizer",
        abstract: "Nanoseconds per parameter of an Adam and an SGD step with fp32, bf16 and int8 state, and the ratios to fp32.")

    @Option(help: "Timed repeats per format; medians are reported.")
    var repeats: Int = 7

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        if repeats < 1 { throw ValidationError("--repeats must be at least 1.") }
    }

    func run() throws {
        let rows = OptimizerUpdateBenchmark.run(repeats: repeats)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
        } else {
            print(OptimizerUpdateBenchmark.table(rows, repeats: repeats))
        }
    }
}
