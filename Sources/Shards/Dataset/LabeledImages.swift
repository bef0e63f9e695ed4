/// Labelled uint8 images held in memory, ready to be written as one split of a shard dataset.
///
/// This is the shortest way from arrays to a dataset the loader and the trainer read: records
/// get the schema every image converter writes (an `image` field of shape (H, W, C) and an int32
/// `label`), and ``write(to:split:options:replace:)`` goes through ``DatasetWriter``, so the split
/// is written atomically and the manifest records its per-channel statistics.
///
/// ```swift
/// var images = LabeledImages(height: 8, width: 8, channels: 1, classCount: 4)
/// images.append(pixels: somePixels, label: 2)   // 64 bytes, row-major, channels last
/// try images.write(to: "data/tiny", split: "train")
/// ```
public struct LabeledImages: Sendable {
    public let height: Int
    public let width: Int
    public let channels: Int
    /// Labels are `0..<classCount`.
    public let classCount: Int
    /// Every image's pixels back to back, each (H, W, C) row-major.
    public private(set) var pixels: [UInt8] = []
    /// One label per image.
    public private(set) var labels: [Int32] = []

    /// An empty set of images of one shape.
    /// - Precondition: every dimension and `classCount` are positive.
    public init(height: Int, width: Int, channels: Int = 1, classCount: Int) {
        precondition(height > 0 && width > 0 && channels > 0, "image dimensions must be positive")
        precondition(classCount > 0, "classCount must be positive")
        self.height = height
        self.width = width
        self.channels = channels
        self.classCount = classCount
    }

    /// Bytes of one image: height x width x channels.
    public var imageBytes: Int { height * width * channels }

    /// The number of images.
    public var count: Int { labels.count }

    /// The record layout these images are written with.
    public var schema: RecordSchema {
        RecordSchema(fields: [Field(name: "image", type: .uint8, shape: [height, width, channels]),
                              Field(name: "label", type: .int32, shape: [])],
                     classCount: classCount)
    }

    /// Adds one image.
    /// - Precondition: `pixels` holds exactly ``imageBytes`` values and `label` is in `0..<classCount`.
    public mutating func append(pixels image: [UInt8], label: Int) {
        precondition(image.count == imageBytes, "an image is \(imageBytes) bytes, got \(image.count)")
        precondition(label >= 0 && label < classCount, "label \(label) is outside 0..<\(classCount)")
        pixels += image
        labels.append(Int32(label))
    }

    /// Writes the images, in the order they were added, as split `split` of the dataset in
    /// `directory` (created if needed; other splits must have the same schema).
    ///
    /// - Parameters:
    ///   - directory: the dataset folder; its `manifest.json` is written last, atomically.
    ///   - split: the split's name: letters, digits and underscores.
    ///   - options: block size and zstd level of the shards.
    ///   - replace: replace the split if the dataset already has one of this name.
    /// - Returns: the split's manifest entry.
    /// - Throws: ``ShardError`` when there are no images, the split exists (and `replace` is
    ///   false), the schema differs from the dataset's, or a file cannot be written.
    @discardableResult
    public func write(to directory: String, split: String, options: ShardWriterOptions = ShardWriterOptions(),
                      replace: Bool = false) throws -> SplitManifest {
        guard count > 0 else { throw ShardError.invalidOption(name: "images", problem: "there are none to write") }
        let schema = self.schema
        let recordSize = schema.recordSize
        // Records are the image's bytes, then the label as little-endian int32.
        var records: [UInt8] = []
        records.reserveCapacity(count * recordSize)
        for i in 0..<count {
            records += pixels[i * imageBytes ..< (i + 1) * imageBytes]
            withUnsafeBytes(of: labels[i].littleEndian) { records += $0 }
        }
        var statistics = try PixelStatistics(schema: schema)
        records.withUnsafeBytes { statistics.add($0) }
        var labelCounts = [Int](repeating: 0, count: classCount)
        for label in labels { labelCounts[Int(label)] += 1 }

        let writer = try DatasetWriter(directory: directory, split: split, options: options, replace: replace)
        do {
            try writer.start(schema: schema, totalRecords: count, recordsPerShard: count)
            try records.withUnsafeBytes { try writer.append($0) }
            let parameters = WriterParameters(blockBytes: options.blockBytes, recordsPerBlock: options.recordsPerBlock(recordSize: recordSize),
                                              level: options.level, recordsPerShard: count, shuffleSeed: nil,
                                              shuffleMethod: "none", zstdVersion: Zstd.versionString, tool: "LabeledImages")
            let split = statistics.normalization.map {
                SplitStatistics(mean: $0.mean, std: $0.std, labelCounts: labelCounts)
            }
            return try writer.commit(parameters: parameters, source: SourceProvenance(format: "memory", files: []),
                                     statistics: split)
        } catch {
            writer.abort()
            throw error
        }
    }
}
