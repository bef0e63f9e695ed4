#if canImport(Glibc)
import Glibc
#endif
import Randomness
import Shards

/// Two-pass external shuffle with bounded memory, for inputs larger than the memory budget.
/// Pass 1 streams the input once and sends each record to one of B bucket files chosen
/// uniformly at random; pass 2 loads one bucket at a time (about budget / 2 bytes), shuffles it
/// with Fisher-Yates and emits it. A uniform bucket choice followed by a uniform shuffle inside
/// each bucket gives every record order the same probability, like an in-memory shuffle.
/// Memory: one bucket plus B write buffers of 256 KiB.
struct ExternalShuffle {
    let directory: String
    let bucketCount: Int
    let recordSize: Int
    private var buckets: [BucketFile] = []
    private(set) var counts: [Int]

    init(directory: String, totalBytes: Int, memoryBudget: Int, recordSize: Int) throws {
        self.directory = directory
        self.recordSize = recordSize
        let bucketBytes = max(recordSize, memoryBudget / 2)
        bucketCount = max(2, (totalBytes + bucketBytes - 1) / bucketBytes)
        counts = Array(repeating: 0, count: bucketCount)
        for b in 0..<bucketCount { buckets.append(try BucketFile(path: path(b), recordSize: recordSize)) }
    }

    private func path(_ bucket: Int) -> String { directory + "/bucket-\(bucket).raw" }

    /// Pass 1: scatters `records` to random buckets.
    mutating func scatter(_ records: UnsafeRawBufferPointer, rng: inout Xoshiro256) throws {
        let n = records.count / recordSize
        for i in 0..<n {
            let b = rng.next(below: bucketCount)
            try buckets[b].append(UnsafeRawBufferPointer(rebasing: records[i * recordSize ..< (i + 1) * recordSize]))
            counts[b] += 1
        }
    }

    /// Pass 2: for each bucket in order, shuffles its records and hands them to `emit` in that
    /// order (in chunks), then deletes the bucket file.
    mutating func gather(rng: inout Xoshiro256, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        for b in buckets { try b.close() }
        let chunkRecords = max(1, (1 << 20) / recordSize)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkRecords * recordSize, alignment: 64)
        defer { chunk.deallocate() }
        for b in 0..<bucketCount {
            let count = counts[b]
            defer { unlink(path(b)) }
            guard count > 0 else { continue }
            let file = try MappedFile(path: path(b))
            guard file.count == count * recordSize else {
                throw ShardError.io(file: path(b), operation: "read back", message: "the scratch bucket has \(file.count) bytes, expected \(count * recordSize)")
            }
            var order = [Int32](unsafeUninitializedCapacity: count) { buf, n in
                for i in 0..<count { buf[i] = Int32(i) }
                n = count
            }
            rng.shuffle(&order)
            try gatherRecords(file.bytes, order: order, recordSize: recordSize, chunk: chunk, emit: emit)
        }
    }
}

/// Copies records of `source` in `order` through `chunk` into `emit`.
func gatherRecords(_ source: UnsafeRawBufferPointer, order: [Int32], recordSize: Int,
                   chunk: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
    let chunkRecords = chunk.count / recordSize
    var filled = 0
    let src = source.baseAddress!
    let dst = chunk.baseAddress!
    for index in order {
        (dst + filled &* recordSize).copyMemory(from: src + Int(index) &* recordSize, byteCount: recordSize)
        filled += 1
        if filled == chunkRecords {
            try emit(UnsafeRawBufferPointer(rebasing: chunk[0 ..< filled * recordSize]))
            filled = 0
        }
    }
    if filled > 0 { try emit(UnsafeRawBufferPointer(rebasing: chunk[0 ..< filled * recordSize])) }
}

/// A scratch file written through a 256 KiB buffer.
private final class BucketFile {
    let file: OutputFile
    var buffer: [UInt8] = []
    let capacity: Int

    init(path: String, recordSize: Int) throws {
        file = try OutputFile(path: path)
        capacity = max(256 << 10, recordSize)
        buffer.reserveCapacity(capacity)
    }

    func append(_ record: UnsafeRawBufferPointer) throws {
        if buffer.count + record.count > capacity { try flush() }
        buffer.append(contentsOf: record)
    }

    func flush() throws {
        try file.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Scratch data needs no fsync: a crash discards the whole staging folder anyway.
    func close() throws {
        try flush()
        buffer = []
        try file.closeWithoutSync()
    }
}
