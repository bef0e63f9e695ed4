import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

@main
struct Layerwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layerwise",
        abstract: "Train neural networks with local error signals on small CPU-only machines, and prove the memory they save.",
        subcommands: [ShardsCommand.self, TrainCommand.self, EvalCommand.self, ProfileCommand.self, ProfileModeCommand.self,
                      BenchCommand.self, SelfCheckCommand.self])

    /// Standard output is line-buffered even into a pipe, so per-epoch lines appear as they
    /// happen under `tee` or a log collector, not when the process exits.
    static func main() {
        setvbuf(stdout, nil, _IOLBF, 0)
        main(nil)
    }
}
