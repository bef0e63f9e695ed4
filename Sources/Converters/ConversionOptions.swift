import Shards

/// Everything `DatasetConverter` needs besides the input.
public struct ConversionOptions: Sendable {
    /// The dataset folder (created if missing; a new split is added to an existing dataset).
    public var directory: String
    public var split: String
    public var writer: ShardWriterOptions
    /// Records per shard; nil to derive it from `shardBytes`.
    public var shardRecords: Int?
    /// Target uncompressed bytes per shard, rounded down to whole blocks.
    public var shardBytes: Int
    /// Seed of the pre-shuffle; nil keeps the source order.
    public var shuffleSeed: UInt64?
    /// Records up to this many bytes are shuffled in memory; larger inputs use a two-pass
    /// external bucket shuffle whose buckets are about half this size.
    public var memoryBudget: Int
    /// Number of classes; nil: the dataset's existing count, the format's, or max label + 1.
    public var classCount: Int?
    /// Replace the split if the dataset already has it.
    public var replace: Bool
    /// Source records to pass over before the first converted one (source order, before the
    /// pre-shuffle), and how many to convert after them (nil: the rest).
    public var skip: Int = 0
    public var take: Int?
    /// The augmentation to recommend in the manifest (`train` uses it when given no
    /// `--augment`); nil keeps the dataset's existing recommendation, if any.
    public var augmentHint: AugmentRecipe?

    public static let defaultSeed: UInt64 = 0x5EED

    public init(directory: String, split: String = "train", writer: ShardWriterOptions = ShardWriterOptions(),
                shardRecords: Int? = nil, shardBytes: Int = 64 << 20, shuffleSeed: UInt64? = ConversionOptions.defaultSeed,
                memoryBudget: Int = 512 << 20, classCount: Int? = nil, replace: Bool = false) {
        self.directory = directory
        self.split = split
        self.writer = writer
        self.shardRecords = shardRecords
        self.shardBytes = shardBytes
        self.shuffleSeed = shuffleSeed
        self.memoryBudget = memoryBudget
        self.classCount = classCount
        self.replace = replace
    }

    /// Records per shard for a record size: whole blocks, at least one.
    func recordsPerShard(recordSize: Int) -> Int {
        if let shardRecords { return shardRecords }
        let perBlock = writer.recordsPerBlock(recordSize: recordSize)
        return max(1, shardBytes / recordSize / perBlock) * perBlock
    }
}

/// Progress of a long conversion, for a progress bar.
public struct ConversionProgress: Sendable {
    /// "reading", "shuffling" or "writing".
    public var phase: String
    public var done: Int
    public var total: Int
}

/// What a conversion produced.
public struct ConversionReport: Sendable {
    public var directory: String
    public var split: String
    public var manifest: SplitManifest
    public var schema: RecordSchema
    public var seconds: Double
    /// Things worth a look that did not stop the conversion (labels far outside the rest).
    public var warnings: [String] = []
}
