import ArgumentParser

/// `layerwise shards ...`: convert datasets to .zshard and inspect them.
struct ShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shards",
        abstract: "Convert datasets into .zshard datasets and inspect, verify and benchmark them.",
        subcommands: [ShardsConvertCommand.self, ShardsInfoCommand.self, ShardsVerifyCommand.self,
                      ShardsCatCommand.self, ShardsBenchCommand.self])
}
