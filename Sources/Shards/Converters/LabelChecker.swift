/// Checks every label as records stream by, in source order, so an error names the record:
/// labels must be >= 0 and below the class count when it is fixed in advance.
struct LabelChecker {
    let input: RecordInput
    let offset: Int
    let recordSize: Int
    /// The class count known before reading (option, existing dataset or format), if any.
    let fixedClassCount: Int?
    private(set) var maxLabel: Int32 = -1

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

    /// Checks `records` whose first record has source index `first`.
    mutating func check(_ records: UnsafeRawBufferPointer, first: Int) throws {
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
        }
        maxLabel = largest
    }
}
