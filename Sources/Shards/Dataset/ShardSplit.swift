/// One split of a dataset over all its shards, numbered globally: block 0 is the first block
/// of the first shard, and blocks of shard k follow those of shard k - 1. The loader reads
/// through this as a `RecordBlockSource`.
public final class ShardSplit: RecordBlockSource {
    public let name: String
    public let schema: RecordSchema
    public let shards: [ShardReader]
    public let fingerprint: String
    public let blockCount: Int
    public let recordCount: Int
    public let maxBlockBytes: Int
    /// Global number of each shard's first block, plus the total at the end.
    private let firstBlock: [Int]
    /// Records of every global block.
    private let blockRecords: [Int]

    init(name: String, schema: RecordSchema, shards: [ShardReader], fingerprint: String) {
        self.name = name
        self.schema = schema
        self.shards = shards
        self.fingerprint = fingerprint
        var first = [0]
        var records = [Int]()
        for s in shards {
            first.append(first.last! + s.blocks.count)
            records += s.blocks.map(\.records)
        }
        firstBlock = first
        blockRecords = records
        blockCount = first.last!
        recordCount = shards.reduce(0) { $0 + $1.totalRecords }
        maxBlockBytes = shards.map(\.largestBlock).max() ?? 0
    }

    public func recordCount(ofBlock index: Int) -> Int {
        precondition(index >= 0 && index < blockCount, "block \(index) outside 0..<\(blockCount)")
        return blockRecords[index]
    }

    /// The shard and the block inside it that global block `index` is.
    public func location(ofBlock index: Int) -> (shard: Int, block: Int) {
        // Binary search for the last shard whose first block is <= index.
        var lo = 0, hi = shards.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if firstBlock[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return (lo, index - firstBlock[lo])
    }

    public func makeDecoder() throws -> BlockDecoder { try ShardSplitDecoder(split: self) }

    /// Takes global block `index`'s frame out of the process's resident set once it is decoded
    /// (see `MappedFile.dropPages`).
    package func dropPages(ofBlock index: Int) {
        let (shard, local) = location(ofBlock: index)
        shards[shard].dropPages(ofBlock: local)
    }
}

/// Decodes any block of a split on one thread; one zstd context serves every shard.
public final class ShardSplitDecoder: BlockDecoder {
    public let split: ShardSplit
    private let decompressor: Zstd.Decompressor

    init(split: ShardSplit) throws {
        self.split = split
        decompressor = try makeDecompressor()
    }

    /// Errors name the shard file and the block's number inside that shard.
    public func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        guard index >= 0 && index < split.blockCount else { throw ShardError.blockOutOfRange(block: index, count: split.blockCount) }
        let (shard, local) = split.location(ofBlock: index)
        return try split.shards[shard].decode(block: local, into: destination, with: decompressor)
    }
}
