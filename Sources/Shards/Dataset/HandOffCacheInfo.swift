/// What makes a dataset a hand-off cache (`train --schedule greedy --cache-handoffs DIR`): the
/// frozen prefix's output (h before dropout) for every training record, written once when a
/// greedy round ends and read back by the next round instead of running the prefix.
///
/// Its records are `handoff` (float32 or bfloat16, the hand-off's shape: C x H x W or F) and
/// `label` (int32), one record per block, in the training split's storage order. The
/// `HandOffLoader` draws them in the order the training split's epoch plan gives (the split's
/// block structure is kept here), so a cached round sees the same batches as a recomputing one.
/// Values are stored as computed: no normalisation or augmentation is ever applied to them,
/// and the image loader refuses the dataset (it has no `image` field).
public struct HandOffCacheInfo: Codable, Sendable, Equatable {
    public static let kindName = "layerwise.handoff-cache"
    /// Field names of a cache record.
    public static let valueField = "handoff"
    public static let labelField = "label"

    /// How the values are stored.
    public enum Precision: String, Codable, Sendable, CaseIterable {
        /// float32, bit for bit what the prefix computed.
        case fp32
        /// bfloat16, rounded to nearest even: half the bytes, 8 bits of mantissa.
        case bf16

        public var fieldType: FieldType { self == .fp32 ? .float32 : .bfloat16 }
    }

    /// `layerwise.handoff-cache`.
    public var kind: String
    /// The greedy round that reads it (1-based, as printed): the output of blocks 0..<round-1.
    public var round: Int
    /// The model, as `ModelSpec.description` prints it.
    public var model: String
    /// The run folder it was written for.
    public var run: String
    /// SHA-256 (first 128 bits) of the run's configuration as a resumed run must repeat it.
    public var configDigest: String
    /// SHA-256 (first 128 bits) of the frozen prefix's tensors (weights, biases, BatchNorm
    /// parameters and running statistics) when the cache was written.
    public var weightsDigest: String
    /// One example's hand-off: [C, H, W] or [F].
    public var shape: [Int]
    public var precision: Precision
    /// The training split's fingerprint and block structure (records per block, in storage
    /// order): the epoch plan is drawn over these.
    public var sourceFingerprint: String
    public var sourceBlockRecords: [Int]

    public init(round: Int, model: String, run: String, configDigest: String, weightsDigest: String, shape: [Int],
                precision: Precision, sourceFingerprint: String, sourceBlockRecords: [Int]) {
        kind = HandOffCacheInfo.kindName
        self.round = round
        self.model = model
        self.run = run
        self.configDigest = configDigest
        self.weightsDigest = weightsDigest
        self.shape = shape
        self.precision = precision
        self.sourceFingerprint = sourceFingerprint
        self.sourceBlockRecords = sourceBlockRecords
    }

    /// Floats of one example's hand-off.
    public var valueCount: Int { shape.reduce(1, *) }

    /// "64x14x14" or "1024".
    public var shapeText: String { shape.map(String.init).joined(separator: "x") }

    /// The record layout of a cache: the values, then the label.
    public static func schema(shape: [Int], precision: Precision, classCount: Int) -> RecordSchema {
        RecordSchema(fields: [Field(name: valueField, type: precision.fieldType, shape: shape),
                              Field(name: labelField, type: .int32, shape: [])],
                     classCount: classCount)
    }

    /// Checks the manifest that carries it: the kind, the schema, one training split of one
    /// record per block whose record count is the source's.
    func validate(_ manifest: DatasetManifest, path: String) throws {
        func invalid(_ problem: String) -> ShardError { .manifestInvalid(file: path, problem: problem) }
        guard kind == HandOffCacheInfo.kindName else { throw invalid("its handOff.kind is \"\(kind)\", not \"\(HandOffCacheInfo.kindName)\"") }
        guard round >= 2, !shape.isEmpty, shape.allSatisfy({ $0 > 0 }), sourceBlockRecords.allSatisfy({ $0 >= 0 }) else {
            throw invalid("its handOff entry has round \(round), shape \(shape): not a hand-off cache's")
        }
        guard manifest.schema == HandOffCacheInfo.schema(shape: shape, precision: precision, classCount: manifest.schema.classCount) else {
            throw invalid("its schema is not that of a \(precision.rawValue) hand-off cache of shape \(shapeText) (fields handoff, label)")
        }
        guard let train = manifest.splits["train"], manifest.splits.count == 1 else {
            throw invalid("a hand-off cache holds one split, \"train\" (it has \(manifest.splitNames))")
        }
        let records = sourceBlockRecords.reduce(0, +)
        guard train.records == records, train.blocks == records else {
            throw invalid("its split holds \(train.records) records in \(train.blocks) blocks; a cache of a \(records)-record split holds one record per block")
        }
    }
}
