import Shards

/// Checks every label as records stream by, in source order, so an error names the record:
/// labels must be >= 0 and below the class count when it is fixed in advance.
struct LabelChecker {
    let input: RecordInput
    let offset: Int
    let recordSize: Int
    /// The class count known before reading (option, existing dataset or format), if any.
    let fixedClassCount: Int?
    private(set) var maxLabel: Int32 = -1
    /// How many records carry each label, over one pass.
    private(set) var counts: [Int32: Int] = [:]

    init(input: RecordInput, fixedClassCount: Int?) {
        self.input = input
        var offset = 0
        for f in input.fields where f.name != "label" { offset += f.byteCount }
        self.offset = offset
        recordSize = input.recordSize
        self.fixedClassCount = fixedClassCount
    }

    /// The class count of the schema: the fixed one, or the largest label seen plus one.
    var classCount: Int { fixedClassCount ?? Int(maxLabel) + 1 }

    /// Checks `records` whose first record has source index `first`; `count` adds their labels
    /// to `counts` (off for a second pass over the same records).
    mutating func check(_ records: UnsafeRawBufferPointer, first: Int, count countLabels: Bool = true) throws {
        let count = records.count / recordSize
        let limit = Int32(clamping: fixedClassCount ?? Int(Int32.max))
        var largest = maxLabel
        for i in 0..<count {
            let label = Int32(littleEndian: records.loadUnaligned(fromByteOffset: i &* recordSize &+ offset, as: Int32.self))
            if label < 0 || (fixedClassCount != nil && label >= limit) {
                throw ShardError.labelOutOfRange(file: input.labelFile(ofRecord: first + i), record: first + i,
                                                 label: Int(label), classCount: fixedClassCount ?? 0)
            }
            if label > largest { largest = label }
            if countLabels { counts[label, default: 0] += 1 }
        }
        maxLabel = largest
    }

    /// Records per class, 0..<classCount.
    func labelCounts(classCount: Int) -> [Int] {
        var result = [Int](repeating: 0, count: classCount)
        for (label, n) in counts where Int(label) < classCount { result[Int(label)] += n }
        return result
    }

    /// A warning when some labels sit far above the rest, as a stray 255 among digits 0...9
    /// does: the sorted distinct labels are split at the first gap that is wider than both 10
    /// and the whole range below it; the labels above it are named.
    func outlierWarning() -> String? {
        let labels = counts.keys.sorted()
        guard labels.count >= 2 else { return nil }
        for i in 1..<labels.count {
            let below = Int(labels[i - 1]), above = Int(labels[i])
            if above - below > max(10, below + 1) {
                let outliers = labels[i...]
                let records = outliers.reduce(0) { $0 + counts[$1]! }
                let shown = outliers.prefix(5).map(String.init).joined(separator: ", ") + (outliers.count > 5 ? ", ..." : "")
                return "\(input.labelFile(ofRecord: 0)): label\(outliers.count == 1 ? "" : "s") \(shown) (\(records) record\(records == 1 ? "" : "s")) "
                    + "far above the others (\(labels[0])...\(below)); the dataset gets \(classCount) classes. "
                    + "Check the labels, or fix the count with --classes."
            }
        }
        return nil
    }
}
