import CZlib
#if canImport(Glibc)
import Glibc
#endif

/// A sequential input file, plain or gzip-compressed: zlib's gz reader passes plain files
/// through unchanged, so every converter reads `.gz` inputs for free. The only file that calls zlib.
package final class InputFile {
    package let path: String
    /// Size on disk (compressed size for a .gz file).
    package let sizeOnDisk: Int
    private let handle: gzFile
    /// Uncompressed bytes read so far.
    private(set) var position = 0

    package init(path: String) throws {
        self.path = path
        var st = stat()
        guard stat(path, &st) == 0 else { throw ShardError.io(file: path, operation: "open", message: errnoMessage()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ShardError.invalidInput(file: path, problem: "not a regular file") }
        sizeOnDisk = Int(st.st_size)
        guard let h = gzopen(path, "rb") else { throw ShardError.io(file: path, operation: "open", message: errnoMessage()) }
        handle = h
        gzbuffer(handle, 1 << 20)
    }

    deinit { gzclose(handle) }

    /// True when the file is gzip-compressed (known after the first read).
    package var isCompressed: Bool { gzdirect(handle) == 0 }

    /// Reads until `destination` is full or the input ends; returns the bytes read.
    package func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < destination.count {
            let want = UInt32(min(destination.count - done, 1 << 30))
            let n = gzread(handle, destination.baseAddress! + done, want)
            if n < 0 { throw corrupt() }
            if n == 0 { break }
            done += Int(n)
        }
        position += done
        if done < destination.count {
            // A short read is either the true end or a gzip stream that was cut off.
            var code: Int32 = 0
            let message = gzerror(handle, &code)
            if code != Z_OK && code != Z_STREAM_END {
                throw ShardError.invalidInput(file: path, problem: "the gzip data ends early or is corrupt (\(message.map { String(cString: $0) } ?? "zlib error \(code)"))")
            }
        }
        return done
    }

    /// Reads exactly `destination.count` bytes, or throws naming what was expected.
    package func readExactly(into destination: UnsafeMutableRawBufferPointer, expectedTotal: Int) throws {
        let start = position
        let n = try read(into: destination)
        if n < destination.count {
            throw ShardError.truncatedInput(file: path, expectedBytes: expectedTotal, actualBytes: start + n)
        }
    }

    package func readExactly(_ count: Int, expectedTotal: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readExactly(into: $0, expectedTotal: expectedTotal) }
        return bytes
    }

    /// Skips `count` bytes forward.
    package func skip(_ count: Int, expectedTotal: Int) throws {
        var left = count
        var scratch = [UInt8](repeating: 0, count: min(count, 1 << 16))
        while left > 0 {
            let n = min(left, scratch.count)
            try scratch.withUnsafeMutableBytes { try readExactly(into: UnsafeMutableRawBufferPointer(rebasing: $0[0 ..< n]), expectedTotal: expectedTotal) }
            left -= n
        }
    }

    /// Reads to the end and returns how many (uncompressed) bytes were left.
    package func remainingBytes() throws -> Int {
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        var total = 0
        while true {
            let n = try scratch.withUnsafeMutableBytes { try read(into: $0) }
            total += n
            if n < scratch.count { return total }
        }
    }

    private func corrupt() -> ShardError {
        var code: Int32 = 0
        let message = gzerror(handle, &code)
        return ShardError.invalidInput(file: path, problem: "the gzip data is corrupt (\(message.map { String(cString: $0) } ?? "zlib error \(code)"))")
    }

    /// Writes `bytes` gzip-compressed to `path` (tests and tools make .gz inputs with it).
    static func writeGzip(_ bytes: [UInt8], to path: String) throws {
        guard let h = gzopen(path, "wb") else { throw ShardError.io(file: path, operation: "create", message: errnoMessage()) }
        let n = bytes.withUnsafeBytes { gzwrite(h, $0.baseAddress, UInt32($0.count)) }
        let rc = gzclose(h)
        guard Int(n) == bytes.count, rc == Z_OK else { throw ShardError.io(file: path, operation: "write", message: "zlib error \(rc)") }
    }
}
