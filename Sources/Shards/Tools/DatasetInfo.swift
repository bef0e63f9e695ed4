import Foundation

/// Sizes and counts of a dataset, for `shards info`.
public struct DatasetInfo: Sendable, CustomStringConvertible {
    public struct Split: Sendable {
        public var name: String
        public var records: Int
        public var blocks: Int
        public var shards: Int
        /// Bytes on disk.
        public var bytes: Int
        public var uncompressedBytes: Int
        public var writer: WriterParameters
        public var source: SourceProvenance
        public var fingerprint: String
        public var statistics: SplitStatistics?
        public var compressionRatio: Double { bytes == 0 ? 0 : Double(uncompressedBytes) / Double(bytes) }
    }

    public var directory: String
    public var schema: RecordSchema
    public var splits: [Split]
    public var fingerprint: String
    public var augmentHint: String?

    /// Reads the manifest (and nothing else) of the dataset in `directory`.
    public init(directory: String) throws {
        let manifest = try DatasetManifest.load(directory: directory)
        self.directory = directory
        schema = manifest.schema
        fingerprint = manifest.fingerprint
        augmentHint = manifest.augmentHint
        splits = manifest.splitNames.map { name in
            let s = manifest.splits[name]!
            return Split(name: name, records: s.records, blocks: s.blocks, shards: s.shards.count,
                         bytes: s.shards.reduce(0) { $0 + $1.bytes }, uncompressedBytes: s.shards.reduce(0) { $0 + $1.uncompressedBytes },
                         writer: s.writer, source: s.source, fingerprint: s.fingerprint,
                         statistics: s.statistics)
        }
    }

    public var description: String {
        var lines = ["dataset     \(directory)", "fingerprint \(fingerprint)", "schema      \(schema.recordSize) bytes per record, \(schema.classCount) classes"]
        for f in schema.fields {
            lines.append("  \(f.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(f.type.rawValue)\(f.shape)")
        }
        lines.append("augment     " + (augmentHint.map { "\($0) (the converter's --augment-hint; train uses it when given no --augment)" } ?? "no recommendation (train defaults to crop)"))
        for s in splits {
            lines.append("split \(s.name): \(s.records) records, \(s.blocks) blocks in \(s.shards) shard\(s.shards == 1 ? "" : "s")")
            lines.append("  size      \(formatBytes(s.bytes)) on disk, \(formatBytes(s.uncompressedBytes)) raw, ratio \(formatFixed(s.compressionRatio, 3))")
            lines.append("  writer    zstd level \(s.writer.level), blocks of \(s.writer.recordsPerBlock) records (\(formatBytes(s.writer.recordsPerBlock * schema.recordSize))), shuffle \(s.writer.shuffleMethod)\(s.writer.shuffleSeed.map { " seed \($0)" } ?? "")")
            lines.append("  source    \(s.source.format): \(s.source.files.map(\.path).joined(separator: ", "))")
            if let st = s.statistics {
                let values = { (v: [Float]) in v.map { formatFixed(Double($0), 4) }.joined(separator: ", ") }
                lines.append("  pixels    mean \(values(st.mean)), std \(values(st.std)) (per channel, pixels scaled to [0, 1] for uint8)")
                lines.append("  labels    " + st.labelCounts.enumerated().map { "\($0.offset): \($0.element)" }.joined(separator: ", "))
            } else {
                lines.append("  pixels    no statistics (an older manifest; train computes them from the training split)")
            }
            lines.append("  fingerprint \(s.fingerprint)")
        }
        return lines.joined(separator: "\n")
    }
}

/// "12.3 MiB" style sizes.
public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : "\(formatFixed(value, 1)) \(units[unit])"
}

/// A number with a fixed count of decimals, without Foundation's String(format:).
public func formatFixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (abs(value) * scale).rounded()
    let whole = Int(rounded / scale)
    let frac = Int(rounded - Double(whole) * scale)
    let sign = value < 0 && rounded != 0 ? "-" : ""
    if decimals == 0 { return "\(sign)\(whole)" }
    let f = String(frac)
    return "\(sign)\(whole).\(String(repeating: "0", count: decimals - f.count))\(f)"
}
