import Randomness

/// A split of generated image records held as one pattern block in memory, for benchmarks and
/// demos that need a `RecordBlockSource` without files. Records are HWC uint8 images with a
/// uint8 label; "decoding" a block copies the pattern (so a benchmark measures the loader, not
/// a codec) and stamps the block index into the first pixel of each record so blocks differ.
public final class SyntheticRecordSource: RecordBlockSource, @unchecked Sendable {
    public let schema: RecordSchema
    public let recordCount: Int
    public let recordsPerBlock: Int
    public let maxBlockBytes: Int
    public let fingerprint: String
    /// One block of records with random pixels and labels r % classCount.
    private let pattern: [UInt8]

    /// - Parameters:
    ///   - records: total records (60,000 for Fashion-MNIST's train split).
    ///   - height: image height in pixels.
    ///   - width: image width in pixels.
    ///   - channels: image channels (stored last, HWC).
    ///   - classCount: labels cycle through `0..<classCount`.
    ///   - blockBytes: target uncompressed block size; blocks hold whole records.
    ///   - seed: seeds the random pixels.
    public init(records: Int, height: Int = 28, width: Int = 28, channels: Int = 1, classCount: Int = 10,
                blockBytes: Int = 256 * 1024, seed: UInt64 = 0) {
        schema = RecordSchema(fields: [Field(name: "image", type: .uint8, shape: [height, width, channels]),
                                       Field(name: "label", type: .uint8, shape: [])],
                              classCount: classCount)
        let recordSize = schema.recordSize
        recordCount = records
        recordsPerBlock = max(1, blockBytes / recordSize)
        maxBlockBytes = recordsPerBlock * recordSize
        fingerprint = "synthetic-\(records)x\(recordSize)-\(recordsPerBlock)-\(seed)"
        var generator = Xoshiro256(seed: seed)
        var bytes = [UInt8](repeating: 0, count: maxBlockBytes)
        for r in 0..<recordsPerBlock {
            for p in 0..<(recordSize - 1) { bytes[r * recordSize + p] = UInt8(truncatingIfNeeded: generator.next()) }
            bytes[r * recordSize + recordSize - 1] = UInt8(r % classCount)
        }
        pattern = bytes
    }

    public var blockCount: Int { (recordCount + recordsPerBlock - 1) / recordsPerBlock }

    public func recordCount(ofBlock index: Int) -> Int {
        min(recordsPerBlock, recordCount - index * recordsPerBlock)
    }

    public func makeDecoder() throws -> BlockDecoder { Decoder(source: self) }

    private final class Decoder: BlockDecoder {
        let source: SyntheticRecordSource
        init(source: SyntheticRecordSource) { self.source = source }

        func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
            let records = source.recordCount(ofBlock: index)
            let recordSize = source.schema.recordSize
            precondition(destination.count >= records * recordSize, "slot smaller than the block")
            source.pattern.withUnsafeBytes { pattern in
                destination.baseAddress!.copyMemory(from: pattern.baseAddress!, byteCount: records * recordSize)
            }
            let stamp = UInt8(truncatingIfNeeded: index)
            for r in 0..<records { destination[r &* recordSize] = stamp }
            return records
        }
    }
}
