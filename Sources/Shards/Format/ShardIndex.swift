/// Where one block sits in its shard and what it holds.
public struct BlockEntry: Equatable, Sendable {
    /// Byte offset of the block's zstd frame in the file.
    public var offset: Int
    public var compressedSize: Int
    public var uncompressedSize: Int
    public var records: Int
    /// CRC32C of the compressed frame bytes.
    public var crc: UInt32

    public init(offset: Int, compressedSize: Int, uncompressedSize: Int, records: Int, crc: UInt32) {
        self.offset = offset
        self.compressedSize = compressedSize
        self.uncompressedSize = uncompressedSize
        self.records = records
        self.crc = crc
    }
}

/// The block index and trailer at the end of a shard.
struct ShardIndex: Equatable {
    var entries: [BlockEntry]
    /// Offset of the index skippable frame (where the blocks end).
    var indexOffset: Int
    var largestBlock: Int
    var totalRecords: Int

    /// The whole index skippable frame, ending in the trailer.
    func encoded() -> [UInt8] {
        var body = ByteWriter()
        for e in entries {
            body.u64(UInt64(e.offset))
            body.u32(UInt32(e.compressedSize))
            body.u32(UInt32(e.uncompressedSize))
            body.u32(UInt32(e.records))
            body.u32(e.crc)
        }
        body.u64(UInt64(indexOffset))
        body.u32(UInt32(entries.count))
        body.u32(UInt32(largestBlock))
        body.u64(UInt64(totalRecords))
        let crc = body.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        body.u32(crc)
        body.u32(ShardFormat.trailerMagic)
        var frame = ByteWriter()
        frame.u32(ShardFormat.indexFrameMagic)
        frame.u32(UInt32(body.bytes.count))
        frame.append(body.bytes)
        return frame.bytes
    }

    /// Reads the trailer and index from the end of `file` and checks them against each other,
    /// the file size, the header's end and the record size. Nothing read from the file is used
    /// as an offset or size before it has been bounded.
    static func decode(_ file: UnsafeRawBufferPointer, name: String, blocksStart: Int, recordSize: Int) throws -> ShardIndex {
        let size = file.count
        let t = size - ShardFormat.trailerSize
        guard t >= blocksStart + ShardFormat.frameHeaderSize else {
            // Too short for an index frame after the header (which checked out): cut short.
            throw ShardError.truncated(file: name, offset: blocksStart, needed: blocksStart + ShardFormat.frameHeaderSize + ShardFormat.trailerSize,
                                       size: size)
        }
        guard file.u32(at: size - 4) == ShardFormat.trailerMagic else {
            throw ShardError.missingTrailer(file: name, offset: size - 4, size: size)
        }
        let indexOffsetRaw = file.u64(at: t)
        let blockCount = Int(file.u32(at: t + 8))
        let largest = Int(file.u32(at: t + 12))
        let totalRaw = file.u64(at: t + 16)
        let stored = file.u32(at: t + 24)

        // The index frame must end exactly at the end of the file.
        let expectedIndexOffset = t - blockCount * ShardFormat.blockEntrySize - ShardFormat.frameHeaderSize
        guard indexOffsetRaw <= UInt64(size), Int(indexOffsetRaw) == expectedIndexOffset, expectedIndexOffset >= blocksStart else {
            throw ShardError.inconsistent(file: name, block: nil, offset: t,
                                          problem: "the trailer's index offset \(indexOffsetRaw) and block count \(blockCount) do not fit a file of \(size) bytes")
        }
        let indexOffset = expectedIndexOffset
        let frameMagic = file.u32(at: indexOffset)
        guard frameMagic == ShardFormat.indexFrameMagic else {
            throw ShardError.badMagic(file: name, offset: indexOffset, expected: ShardFormat.indexFrameMagic, found: frameMagic)
        }
        let frameSize = Int(file.u32(at: indexOffset + 4))
        guard frameSize == size - indexOffset - ShardFormat.frameHeaderSize else {
            throw ShardError.inconsistent(file: name, block: nil, offset: indexOffset + 4,
                                          problem: "the index frame says \(frameSize) bytes but \(size - indexOffset - ShardFormat.frameHeaderSize) follow it")
        }
        let bodyStart = indexOffset + ShardFormat.frameHeaderSize
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: file[bodyStart ..< size - 8]))
        guard computed == stored else {
            throw ShardError.indexChecksumMismatch(file: name, offset: indexOffset, stored: stored, computed: computed)
        }

        var entries = [BlockEntry]()
        entries.reserveCapacity(blockCount)
        var expectedOffset = blocksStart
        var records = 0
        var maxBlock = 0
        for i in 0..<blockCount {
            let e = bodyStart + i * ShardFormat.blockEntrySize
            let offset = file.u64(at: e)
            let entry = BlockEntry(offset: Int(clamping: offset), compressedSize: Int(file.u32(at: e + 8)),
                                   uncompressedSize: Int(file.u32(at: e + 12)), records: Int(file.u32(at: e + 16)),
                                   crc: file.u32(at: e + 20))
            func fault(_ problem: String) -> ShardError {
                ShardError.inconsistent(file: name, block: i, offset: Int(clamping: offset), problem: problem)
            }
            guard offset == UInt64(expectedOffset) else {
                throw fault("the index puts it at byte offset \(offset) but the previous block ends at \(expectedOffset)")
            }
            guard entry.compressedSize > 0, entry.compressedSize <= indexOffset - expectedOffset else {
                throw fault("its compressed size \(entry.compressedSize) runs past the end of the blocks at \(indexOffset)")
            }
            let (product, overflow) = entry.records.multipliedReportingOverflow(by: recordSize)
            guard entry.records > 0, !overflow, entry.uncompressedSize == product else {
                throw fault("\(entry.records) records of \(recordSize) bytes cannot make \(entry.uncompressedSize) bytes")
            }
            expectedOffset += entry.compressedSize
            records += entry.records
            maxBlock = max(maxBlock, entry.uncompressedSize)
            entries.append(entry)
        }
        guard expectedOffset == indexOffset else {
            throw ShardError.inconsistent(file: name, block: nil, offset: expectedOffset,
                                          problem: "the blocks end at byte offset \(expectedOffset) but the index starts at \(indexOffset)")
        }
        guard totalRaw == UInt64(records) else {
            throw ShardError.inconsistent(file: name, block: nil, offset: t + 16,
                                          problem: "the trailer counts \(totalRaw) records but the blocks hold \(records)")
        }
        guard largest == maxBlock else {
            throw ShardError.inconsistent(file: name, block: nil, offset: t + 12,
                                          problem: "the trailer's largest block is \(largest) bytes but the largest block is \(maxBlock)")
        }
        return ShardIndex(entries: entries, indexOffset: indexOffset, largestBlock: largest, totalRecords: records)
    }
}
