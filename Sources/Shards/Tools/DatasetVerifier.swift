/// What `DatasetVerifier` found.
public struct VerificationReport: Sendable {
    /// Every fault found, each naming its shard, block and offset where it has them.
    public var faults: [ShardError] = []
    public var shards = 0
    public var blocks = 0
    public var records = 0
    /// Bytes of shard files read and hashed.
    public var bytes = 0

    public var isClean: Bool { faults.isEmpty }
}

/// Checks a whole dataset: the manifest, every shard's header and index CRCs, every block's
/// frame CRC32C, zstd content checksum and size, record and block counts against the manifest,
/// and every file's SHA-256. Keeps going after a fault so one run lists them all.
public enum DatasetVerifier {
    /// Throws only when the manifest itself cannot be read; shard faults go into the report.
    public static func verify(directory: String, progress: ((_ shard: String, _ done: Int, _ total: Int) -> Void)? = nil) throws -> VerificationReport {
        let dataset = try ShardDataset(directory: directory)
        var report = VerificationReport()
        let all = dataset.splitNames.flatMap { name in dataset.manifest.splits[name]!.shards }
        let decompressor = try makeDecompressor()
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
        defer { buffer.deallocate() }
        for (i, entry) in all.enumerated() {
            progress?(entry.file, i, all.count)
            report.shards += 1
            let reader: ShardReader
            do { reader = try dataset.openShard(entry) } catch let e as ShardError {
                report.faults.append(e)
                continue
            }
            let hash = reader.fileHash()
            report.bytes += reader.fileSize
            if hash != entry.sha256 {
                report.faults.append(.fileHashMismatch(file: reader.path, expected: entry.sha256, actual: hash))
            }
            if buffer.count < reader.largestBlock {
                buffer.deallocate()
                buffer = .allocate(byteCount: reader.largestBlock, alignment: 64)
            }
            for b in 0..<reader.blocks.count {
                do {
                    report.records += try reader.decode(block: b, into: buffer, with: decompressor)
                    report.blocks += 1
                } catch let e as ShardError {
                    report.faults.append(e)
                }
            }
        }
        progress?("", all.count, all.count)
        return report
    }
}
