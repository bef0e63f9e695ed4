/// The bytes a `BatchLoader` books in its ledger, computed from the source and the config
/// before any loader exists: (K + prefetch) x block size + tables. `BatchLoader` allocates
/// exactly these buffers once, so its peak ledger bytes equal `totalBytes` whatever the
/// dataset's size (`LoaderMemoryTests` pins the equality).
public struct LoaderMemoryBound: Sendable, Equatable {
    /// K: decoded blocks the shuffle draws from (1 without shuffle, at most the block count).
    public var poolBlocks: Int
    /// Read-ahead blocks (0 without decode threads: nothing runs ahead).
    public var prefetchBlocks: Int
    /// The largest uncompressed block: the size of one decode slot.
    public var blockBytes: Int
    /// Per pool slot, the record order of its block: K x (largest block's records) x UInt32.
    public var recordOrderBytes: Int
    /// Two sets of batch buffers (Float images, Int32 labels): the trainer holds one batch
    /// while the next is assembled.
    public var batchBytes: Int
    /// Normalised value of each uint8 pixel per channel (or scale and shift for float32).
    public var pixelTableBytes: Int

    public init(source: RecordBlockSource, config: LoaderConfig) throws {
        let layout = try ImageLayout(schema: source.schema)
        var maxRecords = 0
        for block in 0..<source.blockCount { maxRecords = max(maxRecords, source.recordCount(ofBlock: block)) }
        // As EpochPlan.slotCount and BatchLoader.init decide them.
        poolBlocks = config.shuffle ? max(1, min(config.poolBlocks, source.blockCount)) : 1
        prefetchBlocks = config.threads > 0 ? config.prefetchBlocks : 0
        blockBytes = source.maxBlockBytes
        recordOrderBytes = poolBlocks * maxRecords * MemoryLayout<UInt32>.size
        batchBytes = 2 * config.batchSize * (layout.imageElements * MemoryLayout<Float>.size + MemoryLayout<Int32>.size)
        switch layout.pixelType {
        case .uint8: pixelTableBytes = 256 * layout.channels * MemoryLayout<Float>.size
        case .float32: pixelTableBytes = 2 * layout.channels * MemoryLayout<Float>.size
        }
    }

    /// (K + prefetch) x block size.
    public var slotBytes: Int { (poolBlocks + prefetchBlocks) * blockBytes }
    /// Everything that is not a decode slot.
    public var tableBytes: Int { recordOrderBytes + batchBytes + pixelTableBytes }
    public var totalBytes: Int { slotBytes + tableBytes }
}
