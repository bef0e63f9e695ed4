import MemoryLedger

/// Element type of a record field as stored in a shard.
public enum FieldType: String, Codable, Sendable {
    case uint8, int32, int64, float32
    /// bfloat16: the top 16 bits of a float32 (hand-off caches written with `--cache-precision bf16`).
    case bfloat16

    public var size: Int {
        switch self {
        case .uint8: return 1
        case .bfloat16: return 2
        case .int32, .float32: return 4
        case .int64: return 8
        }
    }
}

/// One field of a fixed-size record: a name, an element type and a shape.
public struct Field: Codable, Sendable, Equatable {
    public var name: String
    public var type: FieldType
    public var shape: [Int]

    public init(name: String, type: FieldType, shape: [Int]) {
        self.name = name
        self.type = type
        self.shape = shape
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { elementCount * type.size }
}

/// The layout of every record in a dataset: fields stored one after another, little-endian,
/// records at a fixed stride inside a block. Image datasets have an `image` field of shape
/// [height, width, channels] (HWC) and a scalar `label` field.
public struct RecordSchema: Codable, Sendable, Equatable {
    public var fields: [Field]
    /// Number of classes of the `label` field (labels are 0..<classCount).
    public var classCount: Int

    public init(fields: [Field], classCount: Int) {
        self.fields = fields
        self.classCount = classCount
    }

    /// Bytes per record.
    public var recordSize: Int { fields.reduce(0) { $0 + $1.byteCount } }

    /// Byte offset of a field inside a record, or nil if the schema has no such field.
    public func offset(of name: String) -> Int? {
        var offset = 0
        for f in fields {
            if f.name == name { return offset }
            offset += f.byteCount
        }
        return nil
    }

    public func field(_ name: String) -> Field? { fields.first { $0.name == name } }
}

/// Decodes blocks of one source. Not thread-safe: each decoding thread makes its own.
public protocol BlockDecoder: AnyObject {
    /// Decompresses block `index` into `destination` (at least the block's uncompressed size)
    /// after checking its integrity, and returns the number of records it holds.
    /// Throws a `ShardError` naming shard, block and offset on any fault.
    func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A sequence of blocks of fixed-size records, for example one split of a dataset across all
/// its shards. The loader reads through this and nothing else.
public protocol RecordBlockSource: AnyObject, Sendable {
    var schema: RecordSchema { get }
    /// Blocks across all shards, in storage order.
    var blockCount: Int { get }
    /// Records in block `index`.
    func recordCount(ofBlock index: Int) -> Int
    /// Total records.
    var recordCount: Int { get }
    /// Largest uncompressed block in bytes: the size of one decode slot.
    var maxBlockBytes: Int { get }
    /// A fingerprint of the source's content, so a saved cursor cannot be replayed on other data.
    var fingerprint: String { get }
    /// A new decoder for one thread.
    func makeDecoder() throws -> BlockDecoder
}

extension RecordSchema {
    /// Bytes per record, or nil when a dimension is not positive or the size overflows: schemas
    /// read from files go through this before `recordSize` is trusted.
    public var checkedRecordSize: Int? {
        var total = 0
        for f in fields {
            var n = f.type.size
            for d in f.shape {
                guard d > 0 else { return nil }
                let (m, o) = n.multipliedReportingOverflow(by: d)
                guard !o, m <= Int(Int32.max) else { return nil }
                n = m
            }
            let (t, o) = total.addingReportingOverflow(n)
            guard !o, t <= Int(Int32.max) else { return nil }
            total = t
        }
        return total > 0 ? total : nil
    }
}
