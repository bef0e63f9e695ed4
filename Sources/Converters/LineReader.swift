import Shards

/// Lines of a text file (plain or .gz), without their line ending, numbered from 1.
/// The returned buffer is valid until the next call.
final class LineReader {
    let file: InputFile
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var atEnd = false
    /// Number of the line last returned (1-based).
    private(set) var lineNumber = 0

    init(path: String) throws {
        file = try InputFile(path: path)
        buffer = .allocate(byteCount: 1 << 20, alignment: 16)
    }

    deinit { buffer.deallocate() }

    func next() throws -> UnsafeRawBufferPointer? {
        while true {
            // Look for a newline in the unread part.
            if let nl = UnsafeRawBufferPointer(rebasing: buffer[start ..< end]).firstIndex(of: 0x0A) {
                let lineEnd = start + nl
                let line = trimCarriageReturn(start, lineEnd)
                start = lineEnd + 1
                lineNumber += 1
                return line
            }
            if atEnd {
                guard start < end else { return nil }
                let line = trimCarriageReturn(start, end)
                start = end
                lineNumber += 1
                return line
            }
            // Move the partial line to the front, grow if one line fills the buffer, refill.
            if start > 0 {
                let n = end - start
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
                start = 0; end = n
            }
            if end == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.baseAddress!.copyMemory(from: buffer.baseAddress!, byteCount: end)
                buffer.deallocate()
                buffer = bigger
            }
            let got = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
            if got == 0 { atEnd = true }
            end += got
        }
    }

    private func trimCarriageReturn(_ s: Int, _ e: Int) -> UnsafeRawBufferPointer {
        var e = e
        if e > s && buffer[e - 1] == 0x0D { e -= 1 }
        return UnsafeRawBufferPointer(rebasing: buffer[s ..< e])
    }
}
