import Foundation

/// One input file a split was converted from.
public struct SourceFile: Codable, Sendable, Equatable {
    public var path: String
    public var bytes: Int
    public init(path: String, bytes: Int) { self.path = path; self.bytes = bytes }
}

/// Where a split's records came from.
public struct SourceProvenance: Codable, Sendable, Equatable {
    /// Converter name: "idx", "cifar10", "cifar100", "npy", "csv".
    public var format: String
    public var files: [SourceFile]
    /// Converter options that shaped the records (label column, coarse labels, ...).
    public var options: [String: String]

    public init(format: String, files: [SourceFile], options: [String: String] = [:]) {
        self.format = format
        self.files = files
        self.options = options
    }
}

/// How a split was written.
public struct WriterParameters: Codable, Sendable, Equatable {
    public var blockBytes: Int
    public var recordsPerBlock: Int
    public var level: Int
    public var recordsPerShard: Int
    /// Seed of the pre-shuffle, or nil when records keep the source order.
    public var shuffleSeed: UInt64?
    /// "none", "in-memory" or "external-buckets".
    public var shuffleMethod: String
    public var zstdVersion: String
    public var tool: String

    package init(blockBytes: Int, recordsPerBlock: Int, level: Int, recordsPerShard: Int, shuffleSeed: UInt64?, shuffleMethod: String,
                 zstdVersion: String, tool: String) {
        self.blockBytes = blockBytes
        self.recordsPerBlock = recordsPerBlock
        self.level = level
        self.recordsPerShard = recordsPerShard
        self.shuffleSeed = shuffleSeed
        self.shuffleMethod = shuffleMethod
        self.zstdVersion = zstdVersion
        self.tool = tool
    }
}

/// What the converter measured over a split's records in its pass: per-channel pixel mean and
/// std (the scaled space a batch is normalised in: uint8 / 255, float32 as stored) and how many
/// records carry each label. Absent from manifests written before statistics were kept.
public struct SplitStatistics: Codable, Sendable, Equatable {
    public var mean: [Float]
    public var std: [Float]
    /// Records per class, 0..<classCount.
    public var labelCounts: [Int]

    public init(mean: [Float], std: [Float], labelCounts: [Int]) {
        self.mean = mean
        self.std = std
        self.labelCounts = labelCounts
    }

    public var normalization: Normalization { Normalization(mean: mean, std: std) }
}

/// One split: its shards in order and how they were made.
public struct SplitManifest: Codable, Sendable, Equatable {
    public var records: Int
    public var blocks: Int
    public var shards: [ShardSummary]
    public var writer: WriterParameters
    public var source: SourceProvenance
    /// Hash of the schema and the shards' names and SHA-256s (see `DatasetManifest.fingerprint(schema:shards:)`).
    public var fingerprint: String
    /// Pixel statistics and label counts; nil in older manifests.
    public var statistics: SplitStatistics? = nil
}

/// `manifest.json`: the dataset's table of contents, written last and atomically. A folder
/// without one is not a dataset.
public struct DatasetManifest: Codable, Sendable, Equatable {
    public static let formatName = "layerwise.zshard-dataset"
    public static let currentVersion = 1
    public static let fileName = "manifest.json"

    public var format: String
    public var formatVersion: Int
    public var schema: RecordSchema
    /// Algorithm of the shards' whole-file hashes.
    public var fileHash: String
    public var splits: [String: SplitManifest]
    /// Hash of all split fingerprints in name order.
    public var fingerprint: String
    /// The augmentation the converter was told suits this data (`--augment-hint`: none, crop
    /// or crop,flip); `train` uses it when given no `--augment`. nil: no recommendation.
    public var augmentHint: String?
    /// Set when the dataset is a greedy run's hand-off cache (nil for every other dataset).
    public var handOff: HandOffCacheInfo?

    public init(schema: RecordSchema, splits: [String: SplitManifest], augmentHint: String? = nil, handOff: HandOffCacheInfo? = nil) {
        self.augmentHint = augmentHint
        self.handOff = handOff
        format = DatasetManifest.formatName
        formatVersion = DatasetManifest.currentVersion
        self.schema = schema
        fileHash = "sha256"
        self.splits = splits
        fingerprint = DatasetManifest.fingerprint(splits: splits)
    }

    /// Split names in sorted order.
    public var splitNames: [String] { splits.keys.sorted() }

    /// A split's fingerprint: the first 128 bits of SHA-256 over the canonical schema JSON and
    /// each shard's name and file hash. Same bytes, same fingerprint; any changed byte, another.
    public static func fingerprint(schema: RecordSchema, shards: [ShardSummary]) -> String {
        var h = SHA256()
        h.update(Array("zshard-split-v1\n".utf8))
        h.update(ShardHeader.canonicalJSON(schema))
        for s in shards { h.update(Array("\n\(s.file) \(s.sha256)".utf8)) }
        return String(h.finalizeHex().prefix(32))
    }

    static func fingerprint(splits: [String: SplitManifest]) -> String {
        var h = SHA256()
        h.update(Array("zshard-dataset-v1".utf8))
        for name in splits.keys.sorted() { h.update(Array("\n\(name) \(splits[name]!.fingerprint)".utf8)) }
        return String(h.finalizeHex().prefix(32))
    }

    /// Pretty, key-sorted JSON, so equal manifests give equal files.
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(self)) + [0x0A]
    }

    /// Reads and checks `manifest.json` in `directory`: it parses, its version is known, its
    /// file names stay inside the folder, its counts add up and its fingerprints match.
    public static func load(directory: String) throws -> DatasetManifest {
        let path = directory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { throw ShardError.manifestMissing(directory: directory) }
        // An empty file is refused before Foundation reads it (its reader leaks a buffer on empty files).
        var st = stat()
        if stat(path, &st) == 0 && st.st_size == 0 { throw ShardError.manifestInvalid(file: path, problem: "it is empty (0 bytes)") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ShardError.io(file: path, operation: "read", message: "\(error.localizedDescription)")
        }
        let manifest: DatasetManifest
        do { manifest = try JSONDecoder().decode(DatasetManifest.self, from: data) } catch {
            throw ShardError.manifestInvalid(file: path, problem: "it does not parse (\(error))")
        }
        try manifest.validate(path: path)
        return manifest
    }

    func validate(path: String) throws {
        func invalid(_ problem: String) -> ShardError { .manifestInvalid(file: path, problem: problem) }
        guard format == DatasetManifest.formatName else { throw invalid("its format is \"\(format)\", not \"\(DatasetManifest.formatName)\"") }
        guard formatVersion >= 1 && formatVersion <= DatasetManifest.currentVersion else {
            throw invalid("its format version \(formatVersion) is not supported (this reader knows \(DatasetManifest.currentVersion))")
        }
        guard schema.checkedRecordSize != nil else { throw invalid("its schema has a field with an impossible shape") }
        if let augmentHint, AugmentRecipe(rawValue: augmentHint) == nil {
            throw invalid("its augmentHint \"\(augmentHint)\" is not none, crop or crop,flip")
        }
        for (name, split) in splits {
            guard split.records == split.shards.reduce(0, { $0 + $1.records }),
                  split.blocks == split.shards.reduce(0, { $0 + $1.blocks }) else {
                throw invalid("split \"\(name)\" counts \(split.records) records in \(split.blocks) blocks but its shards add up to other totals")
            }
            for s in split.shards {
                guard !s.file.isEmpty, !s.file.contains("/"), !s.file.hasPrefix(".") else {
                    throw invalid("split \"\(name)\" names a shard file \"\(s.file)\" outside the dataset folder")
                }
            }
            guard split.fingerprint == DatasetManifest.fingerprint(schema: schema, shards: split.shards) else {
                throw invalid("split \"\(name)\" has a fingerprint that does not match its shards' hashes")
            }
        }
        guard fingerprint == DatasetManifest.fingerprint(splits: splits) else {
            throw invalid("its fingerprint does not match its splits")
        }
        try handOff?.validate(self, path: path)
    }
}
