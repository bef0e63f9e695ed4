import Dispatch
import MemoryLedger

/// How blocks are cut and compressed.
public struct ShardWriterOptions: Sendable, Equatable, Codable {
    /// Target uncompressed block size; a block holds `max(1, blockBytes / recordSize)` records.
    public var blockBytes: Int
    /// zstd level (1...19 are sensible; negative levels are zstd's fast modes).
    public var level: Int
    /// Threads compressing blocks. The output is identical for every thread count because each
    /// block is its own independent zstd frame.
    public var threads: Int
    /// Header flags (`ShardFormat.flagFixedStride` is always set).
    public var flags: UInt16

    public init(blockBytes: Int = 256 * 1024, level: Int = 3, threads: Int = 1, flags: UInt16 = 0) {
        self.blockBytes = blockBytes
        self.level = level
        self.threads = threads
        self.flags = flags
    }

    /// Records per block for a record size.
    public func recordsPerBlock(recordSize: Int) -> Int { max(1, blockBytes / recordSize) }
}

/// What a finished shard holds; the manifest lists one per shard.
public struct ShardSummary: Sendable, Equatable, Codable {
    /// File name inside the dataset folder.
    public var file: String
    public var records: Int
    public var blocks: Int
    /// File size in bytes.
    public var bytes: Int
    /// Sum of the blocks' uncompressed sizes.
    public var uncompressedBytes: Int
    public var largestBlock: Int
    /// SHA-256 of the whole file, lowercase hex.
    public var sha256: String
}

/// Writes one shard file: header, then blocks of whole records compressed in parallel batches,
/// then the index and trailer. Records are appended in the order they will be stored.
public final class ShardWriter {
    public let path: String
    public let schema: RecordSchema
    public let options: ShardWriterOptions
    public let recordsPerBlock: Int
    private let recordSize: Int
    private let blockBytes: Int
    private let file: OutputFile
    private var hash = SHA256()
    private var entries: [BlockEntry] = []
    private var records = 0

    // One batch: `batchBlocks` blocks staged raw, compressed in parallel, then written in order.
    private let batchBlocks: Int
    private let staging: UnsafeMutableRawBufferPointer
    private var stagedBytes = 0
    private let frameCapacity: Int
    private let frames: UnsafeMutableRawBufferPointer
    // Per-slot results live in raw buffers so workers write disjoint slots without touching
    // an array's copy-on-write machinery from several threads.
    private let frameSizes: UnsafeMutableBufferPointer<Int>
    private let frameCRCs: UnsafeMutableBufferPointer<UInt32>
    private let failures: UnsafeMutableBufferPointer<String?>
    private let compressors: [Zstd.Compressor]
    /// Where the staging and frame buffers are booked (nil: not booked).
    private let ledger: Ledger?
    private let bookedBytes: Int

    /// - Parameter ledger: books the staging and frame buffers under `.loader` while the writer lives.
    public init(path: String, schema: RecordSchema, options: ShardWriterOptions = ShardWriterOptions(), ledger: Ledger? = nil) throws {
        guard options.threads >= 1 else { throw ShardError.invalidOption(name: "threads", problem: "must be at least 1") }
        guard options.blockBytes >= 1 else { throw ShardError.invalidOption(name: "block size", problem: "must be at least 1 byte") }
        guard let recordSize = schema.checkedRecordSize else {
            throw ShardError.invalidOption(name: "schema", problem: "has a field with an impossible shape")
        }
        self.path = path
        self.schema = schema
        self.options = options
        self.recordSize = recordSize
        recordsPerBlock = options.recordsPerBlock(recordSize: recordSize)
        blockBytes = recordsPerBlock * recordSize
        guard blockBytes <= Int(UInt32.max) / 2 else {
            throw ShardError.invalidOption(name: "block size", problem: "a block of \(blockBytes) bytes is too large for the index")
        }
        batchBlocks = options.threads == 1 ? 1 : options.threads * 2
        frameCapacity = Zstd.compressBound(blockBytes)
        do {
            compressors = try (0..<options.threads).map { _ in try Zstd.Compressor(level: options.level) }
        } catch let failure as Zstd.Failure {
            throw ShardError.invalidOption(name: "level", problem: "zstd rejected it (\(failure.message))")
        }
        file = try OutputFile(path: path)
        staging = .allocate(byteCount: batchBlocks * blockBytes, alignment: 64)
        frames = .allocate(byteCount: batchBlocks * frameCapacity, alignment: 64)
        frameSizes = .allocate(capacity: batchBlocks); frameSizes.initialize(repeating: 0)
        frameCRCs = .allocate(capacity: batchBlocks); frameCRCs.initialize(repeating: 0)
        failures = .allocate(capacity: batchBlocks); failures.initialize(repeating: nil)
        self.ledger = ledger
        bookedBytes = batchBlocks * (blockBytes + frameCapacity)
        ledger?.book(bytes: bookedBytes, category: .loader, layer: nil, label: "shardWriter.buffers")
        let header = ShardHeader(flags: options.flags | ShardFormat.flagFixedStride, schema: schema).encoded()
        try emit(header)
    }

    deinit {
        ledger?.unbook(bytes: bookedBytes, category: .loader, layer: nil, label: "shardWriter.buffers")
        staging.deallocate()
        frames.deallocate()
        frameSizes.deallocate()
        frameCRCs.deallocate()
        _ = failures.deinitialize()
        failures.deallocate()
    }

    /// Records appended so far.
    public var recordCount: Int { records }

    /// Appends whole records (`bytes.count` must be a multiple of the record size).
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(bytes.count % recordSize == 0, "append takes whole records")
        var src = 0
        while src < bytes.count {
            let take = min(bytes.count - src, staging.count - stagedBytes)
            staging.baseAddress!.advanced(by: stagedBytes).copyMemory(from: bytes.baseAddress!.advanced(by: src), byteCount: take)
            stagedBytes += take
            src += take
            if stagedBytes == staging.count { try flush() }
        }
        records += bytes.count / recordSize
    }

    /// Writes the remaining blocks, the index and the trailer, and syncs the file to disk.
    public func finish() throws -> ShardSummary {
        try flush()
        let indexOffset = file.position
        let largest = entries.map(\.uncompressedSize).max() ?? 0
        let index = ShardIndex(entries: entries, indexOffset: indexOffset, largestBlock: largest, totalRecords: records)
        try emit(index.encoded())
        try file.syncAndClose()
        return ShardSummary(file: fileName(path), records: records, blocks: entries.count, bytes: file.position,
                            uncompressedBytes: records * recordSize, largestBlock: largest, sha256: hash.finalizeHex())
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try emit($0) }
    }

    private func emit(_ bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes)
        hash.update(bytes)
    }

    /// Compresses the staged blocks (the last one may be partial) and writes them in order.
    private func flush() throws {
        guard stagedBytes > 0 else { return }
        let count = (stagedBytes + blockBytes - 1) / blockBytes
        let workers = min(options.threads, count)
        if workers == 1 {
            for b in 0..<count { compressBlock(b, with: compressors[0]) }
        } else {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var b = w
                while b < count { compressBlock(b, with: compressors[w]); b += workers }
            }
        }
        for b in 0..<count {
            if let reason = failures[b] {
                throw ShardError.compressionFailed(file: path, block: entries.count, reason: reason)
            }
            let raw = min(blockBytes, stagedBytes - b * blockBytes)
            entries.append(BlockEntry(offset: file.position, compressedSize: frameSizes[b], uncompressedSize: raw,
                                      records: raw / recordSize, crc: frameCRCs[b]))
            try emit(UnsafeRawBufferPointer(rebasing: frames[b * frameCapacity ..< b * frameCapacity + frameSizes[b]]))
        }
        stagedBytes = 0
    }

    /// Compresses staged block `b` into frame slot `b`; each worker touches only its own slots.
    private func compressBlock(_ b: Int, with compressor: Zstd.Compressor) {
        let start = b * blockBytes
        let raw = UnsafeRawBufferPointer(rebasing: staging[start ..< min(start + blockBytes, stagedBytes)])
        let out = UnsafeMutableRawBufferPointer(rebasing: frames[b * frameCapacity ..< (b + 1) * frameCapacity])
        do {
            let n = try compressor.compress(raw, into: out)
            frameSizes[b] = n
            frameCRCs[b] = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: out[0 ..< n]))
            failures[b] = nil
        } catch let failure as Zstd.Failure {
            failures[b] = failure.message
        } catch {
            failures[b] = "\(error)"
        }
    }
}
