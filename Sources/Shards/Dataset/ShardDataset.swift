import Foundation

/// A dataset folder: `manifest.json` plus its shards. Opening reads and checks the manifest;
/// `split(_:)` opens that split's shards and checks each against the manifest.
public final class ShardDataset: Sendable {
    /// The dataset folder.
    public let directory: String
    /// The checked `manifest.json`.
    public let manifest: DatasetManifest

    /// Opens the dataset in `directory`: reads and checks its manifest (shards are opened by `split(_:)`).
    public init(directory: String) throws {
        self.directory = directory
        manifest = try DatasetManifest.load(directory: directory)
    }

    /// The record layout every split shares.
    public var schema: RecordSchema { manifest.schema }
    /// The splits, sorted by name.
    public var splitNames: [String] { manifest.splitNames }

    /// The path of a shard file of this dataset.
    public func path(of shard: ShardSummary) -> String { directory + "/" + shard.file }

    /// The records of split `name` across all its shards, as the loader reads them.
    public func split(_ name: String) throws -> ShardSplit {
        guard let split = manifest.splits[name] else { throw ShardError.splitNotFound(split: name, available: splitNames) }
        let readers = try split.shards.map { try openShard($0) }
        return ShardSplit(name: name, schema: manifest.schema, shards: readers, fingerprint: split.fingerprint)
    }

    /// Opens one shard and checks it against its manifest entry: size first (a truncated file is
    /// reported as such, not as a missing trailer), then the shard's own checks, then counts and schema.
    /// The whole-file hash is not checked here (it reads every byte); `DatasetVerifier` does that.
    public func openShard(_ entry: ShardSummary) throws -> ShardReader {
        let path = self.path(of: entry)
        var st = stat()
        guard stat(path, &st) == 0 else { throw ShardError.io(file: path, operation: "open", message: errnoMessage()) }
        let size = Int(st.st_size)
        if size < entry.bytes { throw ShardError.truncated(file: path, offset: size, needed: entry.bytes, size: size) }
        if size > entry.bytes { throw ShardError.manifestMismatch(file: path, property: "size in bytes", manifest: "\(entry.bytes)", shard: "\(size)") }
        let reader = try ShardReader(path: path)
        func check(_ property: String, _ m: Int, _ s: Int) throws {
            if m != s { throw ShardError.manifestMismatch(file: path, property: property, manifest: "\(m)", shard: "\(s)") }
        }
        try check("record count", entry.records, reader.totalRecords)
        try check("block count", entry.blocks, reader.blocks.count)
        try check("largest block", entry.largestBlock, reader.largestBlock)
        try check("uncompressed size", entry.uncompressedBytes, reader.uncompressedBytes)
        if reader.schema != manifest.schema {
            throw ShardError.manifestMismatch(file: path, property: "schema",
                                              manifest: String(decoding: ShardHeader.canonicalJSON(manifest.schema), as: UTF8.self),
                                              shard: String(decoding: ShardHeader.canonicalJSON(reader.schema), as: UTF8.self))
        }
        return reader
    }
}
