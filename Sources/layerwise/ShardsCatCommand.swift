import ArgumentParser
import Benchmarks
import Shards
import Tensors

struct ShardsCatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cat", abstract: "Print records of one block: label and a compact image summary, or hex.")

    @Argument(help: "Dataset folder.")
    var directory: String

    @Option(help: "Split name.")
    var split: String = "train"

    @Option(help: "Shard number within the split.")
    var shard: Int = 0

    @Option(help: "Block number within the shard.")
    var block: Int = 0

    @Option(help: "Records of the block: 5, 0..<10, 3...7 (default: the first 10).")
    var range: String?

    @Flag(help: "Print each record's bytes in hex.")
    var hex = false

    func run() throws {
        let records = try RecordBrowser(directory: directory).block(split: split, shard: shard, block: block)
        let selected = try RecordRange.parse(range, count: records.count)
        print("\(records.location): \(records.count) records, showing \(selected.lowerBound)..<\(selected.upperBound)")
        for i in selected { print(records.describe(record: i, hex: hex)) }
    }
}

struct ShardsBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure decompression MB/s on 1 and N threads, loader records/s and memory, and compression ratio at a few levels and block sizes.")

    @Argument(help: "Dataset folder.")
    var directory: String

    @Option(help: "Split to read (default: train if there is one, else the first).")
    var split: String?

    @Option(help: "Decode threads to compare with one (default: all cores).")
    var threads: Int?

    @Option(parsing: .upToNextOption, help: "zstd levels to try.")
    var levels: [Int] = [1, 3, 9]

    @Option(parsing: .upToNextOption, help: "Block sizes to try.")
    var blockSizes: [ByteSize] = [ByteSize(bytes: 64 << 10), ByteSize(bytes: 256 << 10), ByteSize(bytes: 1 << 20)]

    @Option(help: "Bytes of decoded records to compress at each setting.")
    var sample: ByteSize = ByteSize(bytes: 16 << 20)

    @Option(help: "Seconds per decode measurement (median of 3), and per loader run (median of 3).")
    var seconds: Double = 1

    @Option(parsing: .upToNextOption, help: "Loader decode thread counts to measure (none: skip the loader).")
    var loaderThreads: [Int] = [1, 2]

    @Option(help: "Loader batch size.")
    var batchSize: Int = 128

    @Flag(help: "Run the loader without the Fashion-MNIST augmentation (crop with 2-pixel padding, flip).")
    var noAugment = false

    @Option(help: "Samples per second training consumes, to compare the loader with (default: the fastest mode measured on this machine).")
    var trainRate: Double = 7_700

    func validate() throws {
        if seconds <= 0 { throw ValidationError("--seconds must be positive.") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1.") }
        if trainRate <= 0 { throw ValidationError("--train-rate must be positive.") }
        if loaderThreads.contains(where: { $0 < 0 || $0 > 64 }) { throw ValidationError("--loader-threads must be in 0...64.") }
    }

    func run() throws {
        let loader = LoaderConfig(batchSize: batchSize, seed: 1, augment: noAugment ? nil : .fashionMNIST)
        let config = ShardBenchmark.Configuration(split: split, threads: threads ?? ProcessorCount.online, levels: levels,
                                                  blockSizes: blockSizes.map(\.bytes), sampleBytes: sample.bytes, minimumSeconds: seconds,
                                                  loader: loader, loaderThreads: loaderThreads, trainRecordsPerSecond: trainRate)
        print(try ShardBenchmark.run(directory: directory, configuration: config))
    }
}
