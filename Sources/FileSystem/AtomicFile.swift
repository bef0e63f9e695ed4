#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that a reader (or a run resumed after a crash) sees either the old file or
/// the complete new one, never a torn one: the bytes go to a temporary file in the same
/// directory, which is fsynced and renamed over the target, and then the directory is fsynced
/// so the rename itself survives a power loss.
///
/// The one atomic writer of the package: checkpoints, run-folder files and reports all go
/// through it. Errors are `FileSystemError.io`, naming the file and the operation.
public struct AtomicFile {
    public let path: String

    public init(path: String) { self.path = path }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        try AtomicFile(path: path).write { try $0.write(bytes) }
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try bytes.withUnsafeBytes { try write($0, to: path) }
    }

    /// Where the bytes go while `write` runs.
    public final class Sink {
        fileprivate let fd: Int32
        fileprivate let target: String
        fileprivate init(fd: Int32, target: String) { (self.fd, self.target) = (fd, target) }

        /// Writes all of `bytes`, retrying short writes and interrupted calls.
        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard var next = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let n = Glibc.write(fd, next, remaining)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileSystemError.io(file: target, operation: "write", errno: errno)
                }
                next += n
                remaining -= n
            }
        }
    }

    var directory: String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    var baseName: String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Runs `body` against a temporary file, then makes it the file at `path`. On any failure
    /// the temporary file is removed and an existing file at `path` is left as it was.
    public func write(_ body: (Sink) throws -> Void) throws {
        let temporary = "\(directory)/.\(baseName).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemError.io(file: path, operation: "create \(temporary)", errno: errno) }
        var closed = false
        do {
            try body(Sink(fd: fd, target: path))
            guard fsync(fd) == 0 else { throw FileSystemError.io(file: path, operation: "fsync", errno: errno) }
            closed = true
            guard close(fd) == 0 else { throw FileSystemError.io(file: path, operation: "close", errno: errno) }
            guard rename(temporary, path) == 0 else { throw FileSystemError.io(file: path, operation: "rename", errno: errno) }
        } catch {
            if !closed { close(fd) }
            unlink(temporary)
            throw error
        }
        try syncDirectory()
    }

    private func syncDirectory() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError.io(file: path, operation: "open directory", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw FileSystemError.io(file: path, operation: "fsync directory", errno: errno) }
    }
}

/// A file-system call that failed: which file, which operation, and errno.
public enum FileSystemError: Error, Equatable, CustomStringConvertible {
    case io(file: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .io(file, operation, code):
            return "\(file): \(operation) failed: \(String(cString: strerror(code)))"
        }
    }
}
