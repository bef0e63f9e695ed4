import MemoryLedger

/// Streams shuffled, normalised (and optionally augmented) batches from a `RecordBlockSource`
/// in bounded memory, decoding blocks ahead on background threads.
///
/// Memory is fixed when the loader is made: (K + prefetch) slot buffers of `maxBlockBytes`, two
/// sets of batch buffers, a record-order table of K x (largest block's records) and a pixel
/// table, all booked in the ledger under `.loader`. Nothing is allocated per batch and nothing
/// grows with the number of blocks.
///
/// The records come out in the epoch plan's order (`EpochPlan`), which depends only on the
/// seed, the epoch, the block record counts and K, so the output is bit-identical for any
/// thread count and a `LoaderCursor` resumes it exactly.
///
/// Not thread-safe: one consumer calls `nextBatch()`. The ledger must outlive the loader, as for
/// any `TrackedBuffer`.
public final class BatchLoader {
    public let source: RecordBlockSource
    public let config: LoaderConfig
    public let layout: ImageLayout
    /// The mean and std the batches are normalised with (given or computed), per channel.
    public let normalization: Normalization
    /// The epoch being read.
    public private(set) var epoch = 0

    private let pipeline: DecodePipeline
    private let converter: ImageConverter
    private let maxRecordsPerBlock: Int
    /// Per logical slot, its block's record order (K rows of maxRecordsPerBlock).
    private let recordOrders: TrackedBuffer<UInt32>
    private let imageBuffers: [TrackedBuffer<Float>]
    private let labelBuffers: [TrackedBuffer<Int32>]
    private var plan: EpochPlan
    /// Per logical slot, the pipeline slot holding its block (-1: none).
    private var slotBuffer: [Int]
    /// True until the pool's blocks have been taken from the pipeline (done lazily, in
    /// `nextBatch`, so that starting or resuming an epoch does not wait for decoding or throw).
    private var poolPending = true
    private var consumed = 0
    private var batchesMade = 0
    /// The error that stopped this epoch; `nextBatch` repeats it until the next start or resume.
    private var failure: LoaderError?
    /// Kept alive (and declared last, so released after the buffers above) because every
    /// TrackedBuffer refers to its ledger without owning it.
    private let ledger: Ledger

    /// Creates a loader at the start of epoch 0.
    /// Computes mean and std with a pass over the source when `config` does not give them.
    public convenience init(source: RecordBlockSource, config: LoaderConfig, ledger: Ledger = .shared) throws {
        try self.init(source: source, config: config, cursor: nil, ledger: ledger)
    }

    /// Creates a loader positioned at `cursor` (or at the start of epoch 0 when nil).
    public init(source: RecordBlockSource, config: LoaderConfig, cursor: LoaderCursor?, ledger: Ledger = .shared) throws {
        try config.validate()
        let layout = try ImageLayout(schema: source.schema)
        var maxRecords = 0
        for block in 0..<source.blockCount {
            let records = source.recordCount(ofBlock: block)
            let bytes = records * layout.recordSize
            guard records >= 0, bytes <= source.maxBlockBytes else {
                throw LoaderError.blockTooLarge(block: block, bytes: bytes, maxBlockBytes: source.maxBlockBytes)
            }
            maxRecords = max(maxRecords, records)
        }
        let normalization: Normalization
        if let mean = config.mean, let std = config.std {
            normalization = try Normalization(mean: mean, std: std).perChannel(layout.channels)
        } else {
            normalization = try Normalization.compute(source: source, ledger: ledger).perChannel(layout.channels)
        }
        self.source = source
        self.config = config
        self.layout = layout
        self.normalization = normalization
        self.ledger = ledger
        maxRecordsPerBlock = maxRecords
        plan = EpochPlan(source: source, seed: config.seed, epoch: 0, shuffle: config.shuffle, poolBlocks: config.poolBlocks)
        slotBuffer = Array(repeating: -1, count: plan.slotCount)
        // Read-ahead needs threads; without them extra slots would never be used.
        let slotCount = plan.slotCount + (config.threads > 0 ? config.prefetchBlocks : 0)
        pipeline = try DecodePipeline(source: source, slotCount: slotCount, threads: config.threads, ledger: ledger)
        converter = ImageConverter(layout: layout, normalization: normalization, augmentation: config.augment, ledger: ledger)
        recordOrders = TrackedBuffer<UInt32>(count: plan.slotCount * maxRecords, category: .loader, layer: nil,
                                             label: "loader.recordOrder", ledger: ledger)
        let imageFloats = config.batchSize * layout.imageElements
        imageBuffers = (0..<2).map { _ in
            TrackedBuffer<Float>(count: imageFloats, category: .loader, layer: nil, label: "loader.batchImages", ledger: ledger)
        }
        labelBuffers = (0..<2).map { _ in
            TrackedBuffer<Int32>(count: config.batchSize, category: .loader, layer: nil, label: "loader.batchLabels", ledger: ledger)
        }
        if let cursor {
            do { try resume(from: cursor) } catch { pipeline.stop(); throw error }
        } else {
            startEpoch(0)
        }
    }

    deinit {
        pipeline.stop()
    }

    /// Where training stands: save it with a checkpoint after the step that used the last batch.
    public var cursor: LoaderCursor {
        LoaderCursor(fingerprint: source.fingerprint, seed: config.seed, epoch: epoch, recordsConsumed: consumed,
                     shuffle: config.shuffle, poolBlocks: config.poolBlocks)
    }

    /// Records handed out this epoch.
    public var recordsConsumed: Int { consumed }

    /// Batches `nextBatch()` will return in a full epoch.
    public var batchesPerEpoch: Int {
        let records = source.recordCount
        return config.dropLast ? records / config.batchSize : (records + config.batchSize - 1) / config.batchSize
    }

    /// Starts epoch `epoch` from its first record (decoding starts in the background at once).
    public func startEpoch(_ epoch: Int) {
        begin(epoch: epoch, skipping: 0)
    }

    /// Continues from a saved cursor: replays the plan up to `cursor.recordsConsumed` without
    /// decoding anything, then decodes only the blocks still in the pool there, so the next
    /// batches equal those of an uninterrupted epoch.
    public func resume(from cursor: LoaderCursor) throws {
        guard cursor.version == LoaderCursor.currentVersion else {
            throw LoaderError.cursorMismatch("cursor version \(cursor.version), this loader reads \(LoaderCursor.currentVersion)")
        }
        guard cursor.fingerprint == source.fingerprint else {
            throw LoaderError.cursorMismatch("it was saved on data with fingerprint \(cursor.fingerprint), this source is \(source.fingerprint)")
        }
        guard cursor.seed == config.seed else {
            throw LoaderError.cursorMismatch("it was saved with seed \(cursor.seed), the loader has seed \(config.seed)")
        }
        guard cursor.shuffle == config.shuffle, !config.shuffle || cursor.poolBlocks == config.poolBlocks else {
            throw LoaderError.cursorMismatch("it was saved with shuffle \(cursor.shuffle) and poolBlocks \(cursor.poolBlocks), the loader has shuffle \(config.shuffle) and poolBlocks \(config.poolBlocks)")
        }
        guard cursor.epoch >= 0, cursor.recordsConsumed >= 0, cursor.recordsConsumed <= source.recordCount else {
            throw LoaderError.cursorMismatch("epoch \(cursor.epoch) and position \(cursor.recordsConsumed) are outside a split of \(source.recordCount) records")
        }
        begin(epoch: cursor.epoch, skipping: cursor.recordsConsumed)
    }

    private func begin(epoch: Int, skipping: Int) {
        self.epoch = epoch
        plan = EpochPlan(source: source, seed: config.seed, epoch: epoch, shuffle: config.shuffle, poolBlocks: config.poolBlocks)
        plan.skip(skipping)
        consumed = skipping
        batchesMade = 0
        failure = nil
        for slot in slotBuffer.indices { slotBuffer[slot] = -1 }
        poolPending = true
        pipeline.restart(DecodeSchedule(plan: plan, source: source))
    }

    /// The next batch of the epoch, or nil when the epoch is over. Throws when a block cannot be
    /// decoded or holds an invalid label; no batch is returned with unchecked data, and the
    /// loader keeps throwing until `startEpoch` or `resume`.
    public func nextBatch() throws -> Batch? {
        if let failure { throw failure }
        do {
            return try assembleBatch()
        } catch let error as LoaderError {
            failure = error
            throw error
        }
    }

    private func assembleBatch() throws -> Batch? {
        if poolPending {
            for slot in plan.active { try takeBlock(plan.slotBlock[slot], into: slot) }
            poolPending = false
        }
        let count = min(config.batchSize, plan.remaining)
        guard count > 0, count == config.batchSize || !config.dropLast else { return nil }

        let images = imageBuffers[batchesMade & 1]
        let labels = labelBuffers[batchesMade & 1]
        let imageElements = layout.imageElements
        let recordSize = layout.recordSize
        let orders = UnsafePointer(recordOrders.pointer)
        for i in 0..<count {
            let position = consumed &+ i
            let draw = plan.draw()
            let record = Int(orders[draw.slot &* maxRecordsPerBlock &+ draw.position])
            let bytes = UnsafeRawPointer(pipeline.slots[slotBuffer[draw.slot]].pointer) + record &* recordSize
            let label = layout.label(of: bytes)
            guard label >= 0 && label < Int64(layout.classCount) else {
                throw LoaderError.labelOutOfRange(block: draw.block, record: record, label: label, classCount: layout.classCount)
            }
            labels.pointer[i] = Int32(truncatingIfNeeded: label)
            converter.convert(record: bytes, into: images.pointer + i &* imageElements,
                              seed: config.seed, epoch: epoch, position: position)
            // The record is copied out, so its block may go back to the decoders.
            switch draw.change {
            case .none:
                break
            case .refilled(let block):
                pipeline.release(slot: slotBuffer[draw.slot])
                slotBuffer[draw.slot] = -1
                try takeBlock(block, into: draw.slot)
            case .drained:
                pipeline.release(slot: slotBuffer[draw.slot])
                slotBuffer[draw.slot] = -1
            }
        }
        let batch = Batch(images: images, labels: labels, count: count, channels: layout.channels,
                          height: layout.height, width: layout.width, epoch: epoch, firstPosition: consumed, owner: self)
        consumed += count
        batchesMade += 1
        return batch
    }

    /// Takes the next decoded block from the pipeline into logical slot `slot` and lays out its
    /// record order.
    private func takeBlock(_ block: Int, into slot: Int) throws {
        let (buffer, records) = try pipeline.take(block: block)
        slotBuffer[slot] = buffer
        plan.recordOrder(ofBlock: block, records: records, into: recordOrders.pointer + slot * maxRecordsPerBlock)
    }
}
