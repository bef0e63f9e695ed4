#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only. The only file that calls mmap. Mapped pages belong to the
/// page cache, not to our tensors, so they are deliberately not booked in the memory ledger.
package final class MappedFile: @unchecked Sendable {
    let path: String
    /// The file's bytes; empty (and no mapping) for an empty file.
    package let bytes: UnsafeRawBufferPointer

    package init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ShardError.io(file: path, operation: "open", message: errnoMessage()) }
        defer { close(fd) }  // the mapping stays valid after the descriptor closes
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ShardError.io(file: path, operation: "stat", message: errnoMessage()) }
        let size = Int(st.st_size)
        guard size > 0 else { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ShardError.io(file: path, operation: "map", message: errnoMessage())
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    package var count: Int { bytes.count }

    /// Takes the pages under `range` out of this process's resident set (`MADV_DONTNEED` on a
    /// read-only private file mapping): they stay in the page cache and come back on the next
    /// touch. For a reader that touches each byte once, as a hand-off cache is read, so that the
    /// process's RSS does not grow with the file. The range is widened to the 64 KiB-aligned
    /// window around it (at least whole pages): a fault maps the cached pages of that window
    /// too (Linux's fault-around, 64 KiB by default), and dropping only the range itself left
    /// 115 MiB of a 221 MiB cache resident over an epoch.
    package func dropPages(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let window = max(Int(sysconf(Int32(_SC_PAGESIZE))), 1 << 16)
        let start = range.lowerBound / window * window
        let end = min(bytes.count, (range.upperBound + window - 1) / window * window)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }
}

/// The current errno as text.
func errnoMessage() -> String { String(cString: strerror(errno)) }
