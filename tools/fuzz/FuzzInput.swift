// Shared by every harness: the parsers under test read files by path, so each input is written
// to a scratch folder of this process (FUZZ_SCRATCH, default /tmp) and parsed from there.
#if canImport(Glibc)
import Glibc
#endif
@testable import Shards
#if canImport(Converters)
@testable import Converters
#endif

enum FuzzInput {
    /// A folder of this process, created once.
    static let folder: String = {
        let base = getenv("FUZZ_SCRATCH").map { String(cString: $0) } ?? "/tmp"
        let path = "\(base)/layerwise-fuzz-\(getpid())"
        mkdir(path, 0o700)
        return path
    }()

    /// Writes `bytes` to `name` inside the scratch folder and returns its path.
    @discardableResult
    static func write(_ bytes: UnsafeRawBufferPointer, to name: String) -> String {
        let path = folder + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(path)")
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            precondition(n > 0, "cannot write \(path)")
            done += n
        }
        close(fd)
        return path
    }

    /// Two files from one input: the first two bytes (little-endian) give the first file's
    /// length, modulo what is left; the rest is the second file. Seeds are written the same way
    /// (tools/fuzz/make-seeds.py).
    static func split(_ data: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        guard data.count >= 2 else { return (UnsafeRawBufferPointer(rebasing: data[0..<0]), data) }
        let rest = data.count - 2
        let length = rest == 0 ? 0 : (Int(data[0]) | Int(data[1]) << 8) % (rest + 1)
        return (UnsafeRawBufferPointer(rebasing: data[2 ..< 2 + length]), UnsafeRawBufferPointer(rebasing: data[2 + length ..< data.count]))
    }

    /// Reads every record of `input` through its reader, as a conversion would.
    static func drain(_ reader: RecordInputReader, recordSize: Int) throws {
        let capacity = max(recordSize, 1) * 16
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        while try reader.read(into: buffer) > 0 {}
    }
}
