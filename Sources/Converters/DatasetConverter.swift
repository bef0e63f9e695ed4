import Foundation
import Randomness
import Shards

/// Converts a `RecordInput` into one split of a dataset: reads and checks every record (labels
/// in range, counts as announced), optionally pre-shuffles them with a seeded generator, and
/// writes shards and manifest through `DatasetWriter`, atomically.
///
/// Shuffle strategy (recorded in the manifest as `shuffleMethod`):
/// - the records fit `memoryBudget`: read all, shuffle a permutation in memory ("in-memory");
/// - they do not: a two-pass external bucket shuffle through scratch files ("external-buckets");
/// - no seed: source order ("none"), streamed in two passes when it does not fit the budget
///   (the first only checks labels, since the header needs the class count before any block).
/// The same input, options and seed give byte-identical shards for any thread count.
public enum DatasetConverter {
    public static func convert(_ source: RecordInput, options: ConversionOptions,
                               progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionReport {
        let started = Date()
        try validate(options)
        let input = options.skip == 0 && options.take == nil ? source : try RecordSlice(source, skip: options.skip, take: options.take)
        let recordSize = input.recordSize
        let total = input.recordCount
        guard total > 0 else {
            throw ShardError.invalidInput(file: input.provenance.files.first?.path ?? "input", problem: "it holds no records")
        }
        var writerOptions = options.writer
        if options.shuffleSeed != nil { writerOptions.flags |= ShardFormat.flagPreShuffled }
        let writer = try DatasetWriter(directory: options.directory, split: options.split, options: writerOptions, replace: options.replace)
        do {
            let fixed = options.classCount ?? writer.existing?.schema.classCount ?? input.impliedClassCount
            var context = Context(input: input, writer: writer, labels: LabelChecker(input: input, fixedClassCount: fixed),
                                  pixels: try? PixelStatistics(schema: RecordSchema(fields: input.fields, classCount: 1)),
                                  recordsPerShard: options.recordsPerShard(recordSize: recordSize), progress: progress)
            let method: String
            let totalBytes = total.multipliedReportingOverflow(by: recordSize)
            if !totalBytes.overflow && totalBytes.partialValue <= options.memoryBudget {
                method = options.shuffleSeed == nil ? "none" : "in-memory"
                try convertInMemory(&context, seed: options.shuffleSeed)
            } else if let seed = options.shuffleSeed {
                method = "external-buckets"
                try convertExternally(&context, seed: seed, memoryBudget: options.memoryBudget)
            } else {
                method = "none"
                try convertStreaming(&context)
            }
            let parameters = WriterParameters(
                blockBytes: options.writer.blockBytes, recordsPerBlock: options.writer.recordsPerBlock(recordSize: recordSize),
                level: options.writer.level, recordsPerShard: context.recordsPerShard, shuffleSeed: options.shuffleSeed,
                shuffleMethod: method, zstdVersion: Zstd.versionString, tool: "layerwise shards convert")
            let statistics = context.pixels?.normalization.map {
                SplitStatistics(mean: $0.mean, std: $0.std, labelCounts: context.labels.labelCounts(classCount: context.schema!.classCount))
            }
            let manifest = try writer.commit(parameters: parameters, source: input.provenance, statistics: statistics,
                                             augmentHint: options.augmentHint?.rawValue)
            return ConversionReport(directory: options.directory, split: options.split, manifest: manifest,
                                    schema: context.schema!, seconds: Date().timeIntervalSince(started),
                                    warnings: [context.labels.outlierWarning()].compactMap { $0 })
        } catch {
            writer.abort()
            throw error
        }
    }

    static func validate(_ options: ConversionOptions) throws {
        if options.writer.blockBytes < 1 { throw ShardError.invalidOption(name: "block size", problem: "must be at least 1 byte") }
        if options.writer.threads < 1 { throw ShardError.invalidOption(name: "threads", problem: "must be at least 1") }
        if let r = options.shardRecords, r < 1 { throw ShardError.invalidOption(name: "shard records", problem: "must be at least 1") }
        if options.shardBytes < 1 { throw ShardError.invalidOption(name: "shard size", problem: "must be at least 1 byte") }
        if options.memoryBudget < 1 { throw ShardError.invalidOption(name: "memory budget", problem: "must be at least 1 byte") }
        if let c = options.classCount, c < 1 { throw ShardError.invalidOption(name: "classes", problem: "must be at least 1") }
    }

    /// State shared by the three strategies.
    struct Context {
        let input: RecordInput
        let writer: DatasetWriter
        var labels: LabelChecker
        /// Per-channel pixel statistics of the split, gathered in the first pass (nil when the
        /// records are not images the loader can read).
        var pixels: PixelStatistics?
        let recordsPerShard: Int
        let progress: ((ConversionProgress) -> Void)?
        var schema: RecordSchema?

        var recordSize: Int { input.recordSize }
        var total: Int { input.recordCount }

        func report(_ phase: String, _ done: Int) { progress?(ConversionProgress(phase: phase, done: done, total: total)) }

        /// Once every label is checked, the class count is known: fix the schema, plan shards.
        mutating func startWriting() throws {
            let schema = RecordSchema(fields: input.fields, classCount: labels.classCount)
            self.schema = schema
            try writer.start(schema: schema, totalRecords: total, recordsPerShard: recordsPerShard)
        }

        /// Reads the whole input in chunks of about 4 MiB (or into `into` when given), checking
        /// labels and the record count; `visit` sees each chunk. `firstPass` is false for a
        /// second pass over the same records, which is not counted again.
        mutating func readAll(phase: String, into target: UnsafeMutableRawBufferPointer? = nil, firstPass: Bool = true,
                              visit: (UnsafeRawBufferPointer) throws -> Void) throws {
            let reader = try input.makeReader()
            let chunkRecords = max(1, (4 << 20) / recordSize)
            let scratch = target == nil ? UnsafeMutableRawBufferPointer.allocate(byteCount: chunkRecords * recordSize, alignment: 64) : nil
            defer { scratch?.deallocate() }
            var done = 0
            while done < total {
                let want = min(chunkRecords, total - done)
                let destination = target.map { UnsafeMutableRawBufferPointer(rebasing: $0[done * recordSize ..< (done + want) * recordSize]) }
                    ?? UnsafeMutableRawBufferPointer(rebasing: scratch![0 ..< want * recordSize])
                let got = try reader.read(into: destination)
                if got == 0 { break }
                let records = UnsafeRawBufferPointer(rebasing: destination[0 ..< got * recordSize])
                try labels.check(records, first: done, count: firstPass)
                if firstPass { pixels?.add(records) }
                try visit(records)
                done += got
                report(phase, done)
            }
            guard done == total else {
                throw ShardError.invalidInput(file: input.labelFile(ofRecord: max(0, done - 1)),
                                              problem: "it ended after \(done) of the \(total) records it announced")
            }
        }
    }

    static func convertInMemory(_ c: inout Context, seed: UInt64?) throws {
        let all = UnsafeMutableRawBufferPointer.allocate(byteCount: c.total * c.recordSize, alignment: 64)
        defer { all.deallocate() }
        try c.readAll(phase: "reading", into: all) { _ in }
        try c.startWriting()
        guard let seed else {
            var done = 0
            let step = max(1, (4 << 20) / c.recordSize)
            while done < c.total {
                let n = min(step, c.total - done)
                try c.writer.append(UnsafeRawBufferPointer(rebasing: all[done * c.recordSize ..< (done + n) * c.recordSize]))
                done += n
                c.report("writing", done)
            }
            return
        }
        var rng = Xoshiro256(seed: seed)
        var order = [Int32](unsafeUninitializedCapacity: c.total) { buf, n in
            for i in 0..<c.total { buf[i] = Int32(i) }
            n = c.total
        }
        rng.shuffle(&order)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, (1 << 20) / c.recordSize) * c.recordSize, alignment: 64)
        defer { chunk.deallocate() }
        var done = 0
        let writer = c.writer
        let context = c
        try gatherRecords(UnsafeRawBufferPointer(all), order: order, recordSize: c.recordSize, chunk: chunk) { records in
            try writer.append(records)
            done += records.count / context.recordSize
            context.report("writing", done)
        }
    }

    static func convertExternally(_ c: inout Context, seed: UInt64, memoryBudget: Int) throws {
        var rng = Xoshiro256(seed: seed)
        var buckets = try ExternalShuffle(directory: c.writer.stagingDirectory, totalBytes: c.total * c.recordSize,
                                          memoryBudget: memoryBudget, recordSize: c.recordSize)
        try c.readAll(phase: "reading") { records in try buckets.scatter(records, rng: &rng) }
        try c.startWriting()
        var done = 0
        let writer = c.writer
        let context = c
        try buckets.gather(rng: &rng) { records in
            try writer.append(records)
            done += records.count / context.recordSize
            context.report("writing", done)
        }
    }

    static func convertStreaming(_ c: inout Context) throws {
        try c.readAll(phase: "checking") { _ in }
        try c.startWriting()
        var done = 0
        let writer = c.writer
        try c.readAll(phase: "writing", firstPass: false) { records in
            try writer.append(records)
            done += records.count
        }
    }
}
