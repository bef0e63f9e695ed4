import Foundation
import MemoryLedger
import Shards

/// A test double of a split: blocks of records held in memory, uncompressed. Its decoder copies
/// a block's bytes, counts what it decoded, and can be told to fail at one block.
final class InMemoryBlockSource: RecordBlockSource, @unchecked Sendable {
    struct InjectedFailure: Error, CustomStringConvertible {
        var block: Int
        var description: String { "injected failure at block \(block)" }
    }

    let schema: RecordSchema
    let blocks: [[UInt8]]
    let fingerprint: String
    let failingBlock: Int?
    /// Lie about the record count of this block in the decoder's answer.
    let miscountedBlock: Int?
    let maxBlockBytes: Int
    private let lock = NSLock()
    private var decoded: [Int] = []

    init(schema: RecordSchema, blocks: [[UInt8]], fingerprint: String = "test-source",
         failingBlock: Int? = nil, miscountedBlock: Int? = nil) {
        self.schema = schema
        self.blocks = blocks
        self.fingerprint = fingerprint
        self.failingBlock = failingBlock
        self.miscountedBlock = miscountedBlock
        maxBlockBytes = blocks.map(\.count).max() ?? 0
    }

    var blockCount: Int { blocks.count }
    func recordCount(ofBlock index: Int) -> Int { blocks[index].count / schema.recordSize }
    var recordCount: Int { blocks.reduce(0) { $0 + $1.count } / schema.recordSize }
    func makeDecoder() throws -> BlockDecoder { Decoder(source: self) }

    /// Blocks decoded so far, in the order decoders finished them.
    var decodedBlocks: [Int] { lock.lock(); defer { lock.unlock() }; return decoded }
    func resetDecodedBlocks() { lock.lock(); decoded = []; lock.unlock() }

    final class Decoder: BlockDecoder {
        let source: InMemoryBlockSource
        init(source: InMemoryBlockSource) { self.source = source }

        func decode(block index: Int, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
            source.lock.lock(); source.decoded.append(index); source.lock.unlock()
            if index == source.failingBlock { throw InjectedFailure(block: index) }
            let bytes = source.blocks[index]
            precondition(destination.count >= bytes.count)
            bytes.withUnsafeBytes { destination.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let records = bytes.count / source.schema.recordSize
            return index == source.miscountedBlock ? records + 1 : records
        }
    }
}

/// Builders for test datasets whose records say who they are.
enum LoaderFixtures {
    /// An image schema: uint8 HWC image and a uint8 label, 10 classes.
    static func schema(height: Int = 6, width: Int = 6, channels: Int = 1, imageType: FieldType = .uint8,
                       labelType: FieldType = .uint8) -> RecordSchema {
        RecordSchema(fields: [Field(name: "image", type: imageType, shape: [height, width, channels]),
                              Field(name: "label", type: labelType, shape: [])],
                     classCount: 10)
    }

    /// Records 0..<total split into blocks of the given sizes. Record `id` has pixel 0, 1 = the
    /// id's low and high byte, the other pixels a pattern of id and position, and label
    /// `label(id)` (default id % 10).
    static func source(blockSizes: [Int], height: Int = 6, width: Int = 6, channels: Int = 1,
                       label: (Int) -> Int = { $0 % 10 }, fingerprint: String = "test-source",
                       failingBlock: Int? = nil, miscountedBlock: Int? = nil) -> InMemoryBlockSource {
        let schema = schema(height: height, width: width, channels: channels)
        let pixels = height * width * channels
        var id = 0
        var blocks: [[UInt8]] = []
        for size in blockSizes {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(size * schema.recordSize)
            for _ in 0..<size {
                for p in 0..<pixels {
                    switch p {
                    case 0: bytes.append(UInt8(id & 0xFF))
                    case 1: bytes.append(UInt8((id >> 8) & 0xFF))
                    default: bytes.append(UInt8((id &* 31 &+ p &* 7) & 0xFF))
                    }
                }
                bytes.append(UInt8(label(id)))
                id += 1
            }
            blocks.append(bytes)
        }
        return InMemoryBlockSource(schema: schema, blocks: blocks, fingerprint: fingerprint,
                                   failingBlock: failingBlock, miscountedBlock: miscountedBlock)
    }

    /// `count` blocks of `size` records.
    static func uniformSource(blocks count: Int, recordsPerBlock size: Int, fingerprint: String = "test-source",
                              label: (Int) -> Int = { $0 % 10 }, failingBlock: Int? = nil) -> InMemoryBlockSource {
        source(blockSizes: Array(repeating: size, count: count), label: label, fingerprint: fingerprint, failingBlock: failingBlock)
    }

    /// Identity normalisation (mean 0, std 1): batch pixels are raw / 255, so ids can be read back.
    static func config(batchSize: Int = 16, shuffle: Bool = true, seed: UInt64 = 42, poolBlocks: Int = 4,
                       prefetchBlocks: Int = 2, threads: Int = 1, augment: Augmentation? = nil,
                       dropLast: Bool = false) -> LoaderConfig {
        LoaderConfig(batchSize: batchSize, shuffle: shuffle, seed: seed, poolBlocks: poolBlocks,
                     prefetchBlocks: prefetchBlocks, threads: threads, augment: augment, dropLast: dropLast,
                     mean: [0], std: [1])
    }

    /// The record id encoded in an image normalised with mean 0, std 1 (no augmentation).
    static func recordID(_ batch: Batch, _ index: Int) -> Int {
        let image = batch.images.pointer + index * batch.imageElements
        let low = Int((image[0] * 255).rounded()), high = Int((image[1] * 255).rounded())
        return low | high << 8
    }
}

/// Everything the loader produced, copied out for comparison.
struct LoaderOutput: Equatable {
    var images: [Float] = []
    var labels: [Int32] = []
    var batchSizes: [Int] = []

    /// Bit patterns, so the comparison is bit-exact (and NaN-safe).
    var imageBits: [UInt32] { images.map(\.bitPattern) }

    static func == (a: LoaderOutput, b: LoaderOutput) -> Bool {
        a.imageBits == b.imageBits && a.labels == b.labels && a.batchSizes == b.batchSizes
    }

    mutating func append(_ batch: Batch) {
        images.append(contentsOf: UnsafeBufferPointer(start: batch.images.pointer, count: batch.count * batch.imageElements))
        labels.append(contentsOf: UnsafeBufferPointer(start: batch.labels.pointer, count: batch.count))
        batchSizes.append(batch.count)
    }

    /// Drains the loader's current epoch (at most `limit` batches).
    static func drain(_ loader: BatchLoader, limit: Int = .max) throws -> LoaderOutput {
        var output = LoaderOutput()
        var taken = 0
        while taken < limit, let batch = try loader.nextBatch() {
            output.append(batch)
            taken += 1
        }
        return output
    }
}
