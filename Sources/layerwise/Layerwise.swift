import ArgumentParser

@main
struct Layerwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layerwise",
        abstract: "Train neural networks with local error signals on small CPU-only machines, and prove the memory they save.",
        subcommands: [ShardsCommand.self, TrainCommand.self, EvalCommand.self, BenchCommand.self, SelfCheckCommand.self,
                      ProfileCommand.self, ProfileModeCommand.self])
}
