import ArgumentParser

/// `layerwise bench ...`: benchmarks, one subcommand per area (release builds; see tools/bench.sh).
/// Add a subcommand here for each new area (`bench shards`, `bench train`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks (build with -c release) and print a table or JSON.",
        subcommands: [BenchFoundationCommand.self, BenchConvCommand.self, BenchTrainCommand.self, BenchOptimizerCommand.self])
}
