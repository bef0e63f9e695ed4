import Foundation
import MemoryLedger

/// Writes one split of a dataset atomically. Shards (and any scratch files) are written into a
/// hidden staging folder inside the dataset folder, synced, renamed into place, and only then
/// is `manifest.json` replaced, atomically. Until that last rename the folder's manifest is the
/// old one (or there is none), so an interrupted or failed conversion never leaves a dataset
/// that looks valid and holds half-written data. `abort()` removes the staging folder.
public final class DatasetWriter {
    public let directory: String
    public let split: String
    /// Scratch folder for this conversion; removed on commit or abort.
    public let stagingDirectory: String
    /// The dataset's manifest before this conversion, if the folder already is a dataset.
    public let existing: DatasetManifest?
    public let options: ShardWriterOptions
    /// Books the shard writers' buffers (hand-off caches are written inside a training run).
    private let ledger: Ledger?

    private var schema: RecordSchema?
    private var totalRecords = 0
    private var recordsPerShard = 0
    private var shardCount = 0
    private var current: ShardWriter?
    private var summaries: [ShardSummary] = []
    private var written = 0

    /// Checks the target and creates the staging folder.
    /// - Parameters:
    ///   - directory: the dataset folder (created if needed).
    ///   - split: the split to write: letters, digits and underscores.
    ///   - options: block size, zstd level and threads of the shards.
    ///   - replace: allow replacing a split that already exists.
    ///   - ledger: books the shard writer's staging and frame buffers under `.loader` (nil: not booked).
    public init(directory: String, split: String, options: ShardWriterOptions, replace: Bool = false, ledger: Ledger? = nil) throws {
        self.ledger = ledger
        guard !split.isEmpty, split.utf8.allSatisfy({ $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            throw ShardError.invalidOption(name: "split", problem: "\"\(split)\" must be letters, digits and underscores")
        }
        self.directory = directory
        self.split = split
        self.options = options
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ShardError.io(file: directory, operation: "create directory", message: error.localizedDescription)
        }
        if fm.fileExists(atPath: directory + "/" + DatasetManifest.fileName) {
            let manifest = try DatasetManifest.load(directory: directory)
            if manifest.splits[split] != nil && !replace { throw ShardError.splitExists(split: split, directory: directory) }
            existing = manifest
        } else {
            existing = nil
        }
        DatasetWriter.removeAbandonedStaging(in: directory)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        stagingDirectory = directory + "/.incoming-\(split)-\(getpid())-\(ts.tv_sec)\(ts.tv_nsec)"
        do { try fm.createDirectory(atPath: stagingDirectory, withIntermediateDirectories: false) } catch {
            throw ShardError.io(file: stagingDirectory, operation: "create directory", message: error.localizedDescription)
        }
    }

    /// Removes staging folders (`.incoming-<split>-<pid>-<time>`) left by conversions whose
    /// process no longer exists (killed, crashed, machine lost power). Live ones are left alone.
    static func removeAbandonedStaging(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".incoming-") {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = Int32(parts[2]), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
            }
        }
    }

    /// The shard file name for shard `index` of `count`: `train-00000-of-00003.zshard`.
    public static func shardName(split: String, index: Int, count: Int) -> String {
        func pad(_ v: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "\(split)-\(pad(index))-of-\(pad(count)).\(ShardFormat.fileExtension)"
    }

    /// Fixes the schema and the number of records to come, and plans the shards.
    public func start(schema: RecordSchema, totalRecords: Int, recordsPerShard: Int) throws {
        if let existing, existing.schema != schema {
            throw ShardError.schemaMismatch(directory: directory,
                                            existing: String(decoding: ShardHeader.canonicalJSON(existing.schema), as: UTF8.self),
                                            new: String(decoding: ShardHeader.canonicalJSON(schema), as: UTF8.self))
        }
        guard totalRecords > 0 else { throw ShardError.invalidOption(name: "input", problem: "it holds no records") }
        guard recordsPerShard > 0 else { throw ShardError.invalidOption(name: "shard size", problem: "must hold at least one record") }
        self.schema = schema
        self.totalRecords = totalRecords
        self.recordsPerShard = recordsPerShard
        shardCount = (totalRecords + recordsPerShard - 1) / recordsPerShard
    }

    /// Appends whole records in storage order, starting new shards as they fill.
    public func append(_ records: UnsafeRawBufferPointer) throws {
        guard let schema else { preconditionFailure("start(schema:) first") }
        let size = schema.recordSize
        var offset = 0
        while offset < records.count {
            if current == nil {
                guard summaries.count < shardCount else {
                    throw ShardError.invalidOption(name: "input", problem: "it produced more than the \(totalRecords) records it announced")
                }
                let name = DatasetWriter.shardName(split: split, index: summaries.count, count: shardCount)
                current = try ShardWriter(path: stagingDirectory + "/" + name, schema: schema, options: options, ledger: ledger)
            }
            let room = (recordsPerShard - current!.recordCount) * size
            let take = min(room, records.count - offset)
            try current!.append(UnsafeRawBufferPointer(rebasing: records[offset ..< offset + take]))
            offset += take
            written += take / size
            if current!.recordCount == recordsPerShard { try finishShard() }
        }
    }

    private func finishShard() throws {
        guard let writer = current else { return }
        summaries.append(try writer.finish())
        current = nil
    }

    /// Finishes the last shard, moves the shards into the dataset folder and writes the new
    /// manifest (the commit point). Returns the split's manifest entry.
    @discardableResult
    /// - Parameters:
    ///   - statistics: what the converter measured over the split (nil: none recorded).
    ///   - augmentHint: the dataset's augmentation recommendation; nil keeps the existing one.
    ///   - handOff: marks the dataset as a hand-off cache (nil: an ordinary dataset).
    public func commit(parameters: WriterParameters, source: SourceProvenance, statistics: SplitStatistics? = nil,
                       augmentHint: String? = nil, handOff: HandOffCacheInfo? = nil) throws -> SplitManifest {
        guard let schema else { preconditionFailure("start(schema:) first") }
        try finishShard()
        guard written == totalRecords, summaries.count == shardCount else {
            throw ShardError.invalidOption(name: "input", problem: "it produced \(written) records but announced \(totalRecords)")
        }
        let entry = SplitManifest(records: written, blocks: summaries.reduce(0) { $0 + $1.blocks }, shards: summaries,
                                  writer: parameters, source: source,
                                  fingerprint: DatasetManifest.fingerprint(schema: schema, shards: summaries),
                                  statistics: statistics)
        let hint = augmentHint ?? existing?.augmentHint
        var splits = existing?.splits ?? [:]
        let fm = FileManager.default
        if let old = splits[split] {
            // Replacing a split: first a manifest without it, so no manifest ever points at a
            // shard name whose file is being swapped underneath it.
            splits[split] = nil
            try OutputFile.writeAtomically(DatasetManifest(schema: schema, splits: splits, augmentHint: hint).encoded(),
                                           to: directory + "/" + DatasetManifest.fileName)
            for s in old.shards where !summaries.contains(where: { $0.file == s.file }) {
                try? fm.removeItem(atPath: directory + "/" + s.file)
            }
        }
        for s in summaries { try OutputFile.rename(stagingDirectory + "/" + s.file, to: directory + "/" + s.file) }
        try OutputFile.syncDirectory(directory)
        splits[split] = entry
        try OutputFile.writeAtomically(DatasetManifest(schema: schema, splits: splits, augmentHint: hint, handOff: handOff).encoded(),
                                       to: directory + "/" + DatasetManifest.fileName)
        try? fm.removeItem(atPath: stagingDirectory)
        return entry
    }

    /// Drops everything written so far; the dataset folder is as it was.
    public func abort() {
        current = nil
        try? FileManager.default.removeItem(atPath: stagingDirectory)
    }
}
