import ArgumentParser
import Converters
import Foundation
import Glibc
import Shards
import Tensors
import Training
#if canImport(Glibc)
#endif

/// `layerwise shards convert idx|cifar|npy|csv`.
struct ShardsConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a dataset into one split of a .zshard dataset (run again with another --split to add one).",
        subcommands: [ConvertIDXCommand.self, ConvertCIFARCommand.self, ConvertNPYCommand.self, ConvertCSVCommand.self])
}

extension AugmentRecipe: ExpressibleByArgument {}

/// Options every converter shares.
struct ConvertOptions: ParsableArguments {
    @Option(help: "The dataset folder to create or add a split to.")
    var out: String

    @Option(help: "Split name (letters, digits, underscores).")
    var split: String = "train"

    @Option(help: "Uncompressed block size (whole records per block).")
    var blockSize: ByteSize = ByteSize(bytes: 256 * 1024)

    @Option(help: "zstd compression level.")
    var level: Int = 3

    @Option(help: "Uncompressed bytes per shard, rounded down to whole blocks.")
    var shardSize: ByteSize = ByteSize(bytes: 64 << 20)

    @Option(help: "Records per shard (overrides --shard-size).")
    var shardRecords: Int?

    @Option(help: "Seed of the pre-shuffle.")
    var seed: UInt64 = ConversionOptions.defaultSeed

    @Flag(help: "Keep the source order instead of pre-shuffling.")
    var noShuffle = false

    @Option(help: "Inputs up to this size are shuffled in memory; larger ones use a two-pass external shuffle.")
    var memoryBudget: ByteSize = ByteSize(bytes: 512 << 20)

    @Option(help: "Threads compressing blocks (the output does not depend on it). Default: all cores.")
    var threads: Int?

    @Option(help: "Number of classes (default: the dataset's, the format's, or the largest label + 1).")
    var classes: Int?

    @Flag(help: "Replace the split if the dataset already has it.")
    var replace = false

    @Option(help: "Augmentation to recommend for this data, stored in the manifest: none, crop or crop,flip (flip only suits data without a handedness, e.g. clothes; not digits or text). `train` uses it when given no --augment.")
    var augmentHint: AugmentRecipe?

    @Option(help: "Pass over the first N source records (source order, before the pre-shuffle).")
    var skip: Int = 0

    @Option(help: "Convert at most N source records after --skip (default: the rest). --take N for one split and --skip N for another carve one file into two parts that never overlap.")
    var take: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1.") }
        if blockSize.bytes < 1 { throw ValidationError("--block-size must be at least 1 byte.") }
        if skip < 0 { throw ValidationError("--skip must not be negative.") }
        if let take, take < 1 { throw ValidationError("--take must be at least 1.") }
    }

    var conversionOptions: ConversionOptions {
        var options = ConversionOptions(directory: out, split: split,
                                        writer: ShardWriterOptions(blockBytes: blockSize.bytes, level: level,
                                                                   threads: threads ?? ProcessorCount.online),
                                        shardRecords: shardRecords, shardBytes: shardSize.bytes,
                                        shuffleSeed: noShuffle ? nil : seed, memoryBudget: memoryBudget.bytes,
                                        classCount: classes, replace: replace)
        options.skip = skip
        options.take = take
        options.augmentHint = augmentHint
        return options
    }

    /// Runs the conversion with a progress bar and prints what was written.
    func run(_ input: RecordInput) throws {
        let bar = ProgressReporter()
        let report = try DatasetConverter.convert(input, options: conversionOptions) { p in
            bar.update(title: p.phase, done: p.done, total: p.total)
        }
        bar.finish()
        for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        print(ConversionSummary(report))
    }
}

struct ConvertIDXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "idx", abstract: "Convert an MNIST-style IDX pair (plain or .gz).")

    @Option(help: "IDX images file (magic 0x0803 or 0x0804).")
    var images: String

    @Option(help: "IDX labels file (magic 0x0801).")
    var labels: String

    @Flag(help: "Accept bytes after the last record of either file (default: an error naming the file and the byte count).")
    var allowTrailing = false

    @OptionGroup var options: ConvertOptions

    func run() throws { try options.run(try IDXInput(images: images, labels: labels, allowTrailingBytes: allowTrailing)) }
}
