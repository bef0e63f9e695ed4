/// One shard file, mapped read-only and checked at open: header magic, version and CRC32C;
/// trailer, index CRC32C, block offsets contiguous and inside the file, block sizes consistent
/// with record counts and the record size, and the trailer's totals. After `init` returns,
/// every offset and size in `blocks` is known to lie inside the file.
///
/// Immutable after `init`; decoding state lives in the `Zstd.Decompressor` each thread owns.
public final class ShardReader: @unchecked Sendable {
    /// Path as given; errors name it.
    public let path: String
    public let header: ShardHeader
    public let blocks: [BlockEntry]
    public let totalRecords: Int
    /// Largest uncompressed block in bytes.
    public let largestBlock: Int
    /// Byte offset where the first block starts (the header's end).
    public let blocksStart: Int
    /// Byte offset of the index frame (the blocks' end).
    public let indexOffset: Int
    private let file: MappedFile

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= ShardFormat.minimumFileSize else {
            if bytes.count >= 4, bytes.u32(at: 0) != ShardFormat.headerFrameMagic {
                throw ShardError.badMagic(file: path, offset: 0, expected: ShardFormat.headerFrameMagic, found: bytes.u32(at: 0))
            }
            throw ShardError.truncated(file: path, offset: 0, needed: ShardFormat.minimumFileSize, size: bytes.count)
        }
        let (header, end) = try ShardHeader.decode(bytes, name: path)
        let index = try ShardIndex.decode(bytes, name: path, blocksStart: end, recordSize: header.schema.recordSize)
        self.header = header
        blocksStart = end
        blocks = index.entries
        totalRecords = index.totalRecords
        largestBlock = index.largestBlock
        indexOffset = index.indexOffset
    }

    public var schema: RecordSchema { header.schema }
    public var fileSize: Int { file.count }
    /// Sum of the compressed frames' sizes.
    public var compressedBlockBytes: Int { indexOffset - blocksStart }
    /// Sum of the blocks' uncompressed sizes.
    public var uncompressedBytes: Int { totalRecords * header.schema.recordSize }

    /// SHA-256 of the whole file, lowercase hex (reads every page).
    public func fileHash() -> String { SHA256.hash(file.bytes) }

    /// The compressed frame of block `index` (bounds checked at open).
    package func frame(_ index: Int) -> UnsafeRawBufferPointer {
        let e = blocks[index]
        return UnsafeRawBufferPointer(rebasing: file.bytes[e.offset ..< e.offset + e.compressedSize])
    }

    /// Takes block `index`'s frame out of the process's resident set (see `MappedFile.dropPages`).
    package func dropPages(ofBlock index: Int) {
        let e = blocks[index]
        file.dropPages(e.offset ..< e.offset + e.compressedSize)
    }

    /// A decoder for one thread.
    public func makeDecoder() throws -> ShardBlockDecoder { try ShardBlockDecoder(reader: self) }

    /// Decodes block `index` into `destination` with a caller-owned decompressor and returns its
    /// record count. Checks, in order: the frame's CRC32C against the index, the size the frame
    /// header announces, zstd's content checksum, and the decoded size. Allocates nothing.
    func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer, with decompressor: Zstd.Decompressor) throws -> Int {
        guard index >= 0 && index < blocks.count else { throw ShardError.blockOutOfRange(block: index, count: blocks.count) }
        let e = blocks[index]
        guard destination.count >= e.uncompressedSize else {
            throw ShardError.destinationTooSmall(block: index, needed: e.uncompressedSize, available: destination.count)
        }
        let frame = self.frame(index)
        let crc = CRC32C.checksum(frame)
        guard crc == e.crc else {
            throw ShardError.blockChecksumMismatch(file: path, block: index, offset: e.offset, stored: e.crc, computed: crc)
        }
        guard let announced = Zstd.frameContentSize(frame) else {
            throw ShardError.corruptFrame(file: path, block: index, offset: e.offset, reason: "the frame header gives no content size")
        }
        guard announced == e.uncompressedSize else {
            throw ShardError.blockSizeMismatch(file: path, block: index, offset: e.offset, expected: e.uncompressedSize, actual: announced)
        }
        // Bound the output to the expected size so a lying frame cannot write past it.
        let out = UnsafeMutableRawBufferPointer(rebasing: destination[0 ..< e.uncompressedSize])
        let n: Int
        do {
            n = try decompressor.decompress(frame, into: out)
        } catch let failure as Zstd.Failure {
            if failure.isChecksum { throw ShardError.contentChecksumMismatch(file: path, block: index, offset: e.offset) }
            throw ShardError.corruptFrame(file: path, block: index, offset: e.offset, reason: failure.message)
        }
        guard n == e.uncompressedSize else {
            throw ShardError.blockSizeMismatch(file: path, block: index, offset: e.offset, expected: e.uncompressedSize, actual: n)
        }
        return e.records
    }
}

/// Decodes blocks of one shard on one thread, reusing its zstd context.
public final class ShardBlockDecoder: BlockDecoder {
    public let reader: ShardReader
    private let decompressor: Zstd.Decompressor

    init(reader: ShardReader) throws {
        self.reader = reader
        decompressor = try makeDecompressor()
    }

    public func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        try reader.decode(block: index, into: destination, with: decompressor)
    }
}

/// A decompressor, with zstd's out-of-memory failure turned into a `ShardError`.
func makeDecompressor() throws -> Zstd.Decompressor {
    do { return try Zstd.Decompressor() } catch let f as Zstd.Failure {
        throw ShardError.io(file: "zstd", operation: "create a decompression context for", message: f.message)
    }
}
