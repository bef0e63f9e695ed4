import Converters
import Shards

/// The lines `shards convert` prints when it is done.
struct ConversionSummary: CustomStringConvertible {
    let report: ConversionReport
    init(_ report: ConversionReport) { self.report = report }

    var description: String {
        let m = report.manifest
        let bytes = m.shards.reduce(0) { $0 + $1.bytes }
        let raw = m.shards.reduce(0) { $0 + $1.uncompressedBytes }
        let ratio = bytes > 0 ? Double(raw) / Double(bytes) : 0
        return "wrote split \(report.split) of \(report.directory): \(m.records) records, \(m.blocks) block\(m.blocks == 1 ? "" : "s"), "
            + "\(m.shards.count) shard\(m.shards.count == 1 ? "" : "s"), \(formatBytes(bytes)) (ratio \(formatFixed(ratio, 2))), "
            + "shuffle \(m.writer.shuffleMethod), \(formatFixed(report.seconds, 2)) s"
            + (m.statistics.map { st in
                let values = { (v: [Float]) in v.map { formatFixed(Double($0), 4) }.joined(separator: ", ") }
                return "\npixel mean \(values(st.mean)), std \(values(st.std)) per channel (stored in the manifest; train normalises with the training split's)"
            } ?? "")
    }
}
