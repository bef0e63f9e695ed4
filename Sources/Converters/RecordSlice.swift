import Shards

/// Records `skip ..< skip + take` of another input, in its source order (before any shuffle),
/// so one file can be carved into splits that never overlap: `--take 50000` for train and
/// `--skip 50000` for validation together cover the file exactly once.
struct RecordSlice: RecordInput {
    let base: RecordInput
    let skip: Int
    let recordCount: Int

    /// Throws when the slice would be empty, naming the source and its count.
    init(_ base: RecordInput, skip: Int, take: Int?) throws {
        guard skip >= 0 else { throw ShardError.invalidOption(name: "skip", problem: "must not be negative (got \(skip))") }
        if let take, take < 1 { throw ShardError.invalidOption(name: "take", problem: "must be at least 1 (got \(take))") }
        let available = base.recordCount - skip
        guard available > 0 else {
            throw ShardError.invalidOption(name: "skip", problem: "\(skip) leaves no records: \(base.labelFile(ofRecord: 0)) holds \(base.recordCount)")
        }
        self.base = base
        self.skip = skip
        recordCount = min(take ?? available, available)
    }

    var fields: [Field] { base.fields }
    var impliedClassCount: Int? { base.impliedClassCount }

    var provenance: SourceProvenance {
        var p = base.provenance
        p.options["skip"] = "\(skip)"
        p.options["take"] = "\(recordCount)"
        return p
    }

    func labelFile(ofRecord index: Int) -> String { base.labelFile(ofRecord: skip + index) }

    func makeReader() throws -> RecordInputReader { try RecordSliceReader(self) }
}

/// Reads and drops the first `skip` records of the base, then stops after `recordCount`.
final class RecordSliceReader: RecordInputReader {
    let slice: RecordSlice
    let base: RecordInputReader
    var skipped = 0
    var done = 0

    init(_ slice: RecordSlice) throws {
        self.slice = slice
        base = try slice.base.makeReader()
    }

    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let recordSize = slice.recordSize
        while skipped < slice.skip {
            let want = min(slice.skip - skipped, destination.count / recordSize)
            let got = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: destination[0 ..< want * recordSize]))
            if got == 0 { return 0 }
            skipped += got
        }
        let want = min(slice.recordCount - done, destination.count / recordSize)
        guard want > 0 else { return 0 }
        let got = try base.read(into: UnsafeMutableRawBufferPointer(rebasing: destination[0 ..< want * recordSize]))
        done += got
        return got
    }
}
