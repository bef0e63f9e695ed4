import MemoryLedger

/// One batch from a `HandOffLoader`: hand-offs as float32, (count, shape...) row-major, and
/// their labels. The buffers belong to the loader and are refilled by the next `nextBatch()`.
public struct HandOffBatch {
    /// batchSize x valueCount floats, of which the first `count` rows are valid.
    public let values: TrackedBuffer<Float>
    public let labels: TrackedBuffer<Int32>
    public let count: Int
    /// One example's hand-off shape.
    public let shape: [Int]
    public let epoch: Int
    /// Position in the epoch of the batch's first record.
    public let firstPosition: Int
}

/// Reads a hand-off cache (`HandOffCacheInfo`) in the order the training loader would have read
/// the split it was made from: the epoch plan (`EpochPlan`) is drawn over the source's block
/// structure with the run's seed and pool size, and each drawn record is fetched from the cache
/// by its index in storage order. Batch b of an epoch thus holds the hand-offs of exactly the
/// records of the training loader's batch b, in the same rows, and a `LoaderCursor` of the
/// training split resumes it.
///
/// A cache stores one record per zstd frame, so a record is decoded when drawn, straight from
/// the mapped shard: memory is one record and one batch (plus the plan's record-order table),
/// not the K decoded blocks of the image loader's pool, which for a conv hand-off would be
/// K x (records per source block) x (hand-off bytes) (16 x 334 x 100 KiB for vgg8b x0.25's
/// first block). Values are handed out as stored (bf16 widened to float32): no normalisation,
/// no augmentation. Not thread-safe: one consumer.
public final class HandOffLoader {
    public let directory: String
    public let info: HandOffCacheInfo
    public let batchSize: Int
    public let seed: UInt64
    public let poolBlocks: Int
    /// The epoch being read.
    public private(set) var epoch = 0

    private let dataset: ShardDataset
    private let split: ShardSplit
    private let decoder: BlockDecoder
    private let structure: SourceBlockStructure
    private let firstRecord: [Int]
    private let maxRecordsPerBlock: Int
    private let recordBytes: Int
    private let classCount: Int
    private var plan: EpochPlan
    private var poolPending = true
    private var consumed = 0
    private let recordOrders: TrackedBuffer<UInt32>
    private let record: TrackedBuffer<UInt8>
    private let values: TrackedBuffer<Float>
    private let labels: TrackedBuffer<Int32>
    /// Kept alive after the buffers (they refer to it).
    private let ledger: Ledger

    /// Opens the cache in `directory` (its manifest must mark it as a hand-off cache; shard
    /// sizes, trailers and counts are checked here, every frame's checksums when it is read).
    public init(directory: String, batchSize: Int, seed: UInt64, poolBlocks: Int = LoaderConfig().poolBlocks, ledger: Ledger = .shared) throws {
        precondition(batchSize > 0 && poolBlocks > 0)
        dataset = try ShardDataset(directory: directory)
        guard let info = dataset.manifest.handOff else {
            throw LoaderError.unsupportedSchema("\(directory) is a dataset, not a hand-off cache (its manifest has no handOff entry)")
        }
        self.directory = directory
        self.info = info
        self.batchSize = batchSize
        self.seed = seed
        self.poolBlocks = poolBlocks
        self.ledger = ledger
        split = try dataset.split("train")
        decoder = try split.makeDecoder()
        structure = SourceBlockStructure(blockRecords: info.sourceBlockRecords, fingerprint: info.sourceFingerprint)
        var first: [Int] = []
        var total = 0
        for r in info.sourceBlockRecords { first.append(total); total += r }
        firstRecord = first
        maxRecordsPerBlock = info.sourceBlockRecords.max() ?? 0
        recordBytes = dataset.schema.recordSize
        classCount = dataset.schema.classCount
        plan = EpochPlan(source: structure, seed: seed, epoch: 0, shuffle: true, poolBlocks: poolBlocks)
        recordOrders = TrackedBuffer<UInt32>(count: plan.slotCount * maxRecordsPerBlock, category: .loader, layer: nil,
                                             label: "handoffLoader.recordOrder", ledger: ledger)
        record = TrackedBuffer<UInt8>(count: recordBytes, category: .loader, layer: nil, label: "handoffLoader.record", ledger: ledger)
        values = TrackedBuffer<Float>(count: batchSize * info.valueCount, category: .loader, layer: nil,
                                      label: "handoffLoader.batchValues", ledger: ledger)
        labels = TrackedBuffer<Int32>(count: batchSize, category: .loader, layer: nil, label: "handoffLoader.batchLabels", ledger: ledger)
    }

    /// Records per epoch.
    public var recordCount: Int { structure.recordCount }

    /// Where reading stands, as the training split's loader would report it.
    public var cursor: LoaderCursor {
        LoaderCursor(fingerprint: info.sourceFingerprint, seed: seed, epoch: epoch, recordsConsumed: consumed,
                     shuffle: true, poolBlocks: poolBlocks)
    }

    /// Continues from a cursor of the training split's loader (or of this one).
    public func resume(from cursor: LoaderCursor) throws {
        guard cursor.fingerprint == info.sourceFingerprint else {
            throw LoaderError.cursorMismatch("it was saved on data with fingerprint \(cursor.fingerprint), the cache in \(directory) was made from \(info.sourceFingerprint)")
        }
        guard cursor.seed == seed, cursor.shuffle, cursor.poolBlocks == poolBlocks else {
            throw LoaderError.cursorMismatch("it was saved with seed \(cursor.seed), shuffle \(cursor.shuffle), poolBlocks \(cursor.poolBlocks); the cache loader has seed \(seed), shuffle true, poolBlocks \(poolBlocks)")
        }
        guard cursor.epoch >= 0, cursor.recordsConsumed >= 0, cursor.recordsConsumed <= recordCount else {
            throw LoaderError.cursorMismatch("epoch \(cursor.epoch) and position \(cursor.recordsConsumed) are outside a split of \(recordCount) records")
        }
        epoch = cursor.epoch
        plan = EpochPlan(source: structure, seed: seed, epoch: epoch, shuffle: true, poolBlocks: poolBlocks)
        plan.skip(cursor.recordsConsumed)
        consumed = cursor.recordsConsumed
        poolPending = true
    }

    /// The next batch of the epoch, or nil when it is over (the last batch may be smaller).
    public func nextBatch() throws -> HandOffBatch? {
        if poolPending {
            for slot in plan.active { order(slot: slot, block: plan.slotBlock[slot]) }
            poolPending = false
        }
        let count = min(batchSize, plan.remaining)
        guard count > 0 else { return nil }
        let n = info.valueCount
        let destination = UnsafeMutableRawBufferPointer(start: record.pointer, count: recordBytes)
        for i in 0..<count {
            let draw = plan.draw()
            let index = firstRecord[draw.block] + Int(recordOrders.pointer[draw.slot * maxRecordsPerBlock + draw.position])
            do {
                _ = try decoder.decode(block: index, into: destination)
            } catch {
                throw LoaderError.decodeFailed(block: index, underlying: error)
            }
            // Each frame is read once an epoch: its mapped pages leave the resident set at once,
            // so RSS stays at the loader's buffers whatever the cache's size (measured: an mlp
            // round on a 221 MiB cache held 358 MiB of RSS without this).
            split.dropPages(ofBlock: index)
            let row = values.pointer + i * n
            switch info.precision {
            case .fp32:
                UnsafeMutableRawPointer(row).copyMemory(from: record.pointer, byteCount: 4 * n)
            case .bf16:
                let bits = UnsafeRawPointer(record.pointer)
                for j in 0..<n {
                    let b = UInt16(littleEndian: bits.loadUnaligned(fromByteOffset: 2 &* j, as: UInt16.self))
                    row[j] = Float(bitPattern: UInt32(b) << 16)
                }
            }
            let label = Int32(littleEndian: UnsafeRawPointer(record.pointer).loadUnaligned(fromByteOffset: recordBytes - 4, as: Int32.self))
            guard label >= 0 && Int(label) < classCount else {
                throw LoaderError.labelOutOfRange(block: index, record: 0, label: Int64(label), classCount: classCount)
            }
            labels.pointer[i] = label
            if case .refilled(let block) = draw.change { order(slot: draw.slot, block: block) }
        }
        let batch = HandOffBatch(values: values, labels: labels, count: count, shape: info.shape, epoch: epoch, firstPosition: consumed)
        consumed += count
        return batch
    }

    private func order(slot: Int, block: Int) {
        plan.recordOrder(ofBlock: block, records: structure.recordCount(ofBlock: block),
                         into: recordOrders.pointer + slot * maxRecordsPerBlock)
    }
}

/// The block structure of the split a cache was made from: what the epoch plan is drawn over.
/// It has no bytes of its own (`makeDecoder` is never called).
final class SourceBlockStructure: RecordBlockSource {
    let blockRecords: [Int]
    let fingerprint: String
    let recordCount: Int
    var schema: RecordSchema { RecordSchema(fields: [], classCount: 0) }
    var blockCount: Int { blockRecords.count }
    var maxBlockBytes: Int { 0 }

    init(blockRecords: [Int], fingerprint: String) {
        self.blockRecords = blockRecords
        self.fingerprint = fingerprint
        recordCount = blockRecords.reduce(0, +)
    }

    func recordCount(ofBlock index: Int) -> Int { blockRecords[index] }

    func makeDecoder() throws -> BlockDecoder {
        throw LoaderError.unsupportedSchema("a block structure has no data to decode")
    }
}
