#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written: write-all, fsync, close, and the directory and rename helpers the
/// atomic commit needs. Errors name the file and the operation.
package final class OutputFile {
    let path: String
    private var fd: Int32
    /// Bytes written so far (the offset of the next write).
    private(set) var position = 0

    /// Creates or truncates `path`.
    package init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ShardError.io(file: path, operation: "create", message: errnoMessage()) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw ShardError.io(file: path, operation: "write", message: errnoMessage())
            }
            p += n; left -= n; position += n
        }
    }

    package func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Flushes to disk and closes; the file is complete only after this returns.
    func syncAndClose() throws {
        guard fd >= 0 else { return }
        if fsync(fd) != 0 { throw ShardError.io(file: path, operation: "sync", message: errnoMessage()) }
        let rc = Glibc.close(fd)
        fd = -1
        if rc != 0 { throw ShardError.io(file: path, operation: "close", message: errnoMessage()) }
    }

    /// Closes without syncing (scratch files that a crash may lose).
    package func closeWithoutSync() throws {
        guard fd >= 0 else { return }
        let rc = Glibc.close(fd)
        fd = -1
        if rc != 0 { throw ShardError.io(file: path, operation: "close", message: errnoMessage()) }
    }

    /// Makes a rename or a new file in `directory` durable.
    static func syncDirectory(_ directory: String) throws {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw ShardError.io(file: directory, operation: "open directory", message: errnoMessage()) }
        defer { close(dfd) }
        if fsync(dfd) != 0 { throw ShardError.io(file: directory, operation: "sync directory", message: errnoMessage()) }
    }

    /// Atomically replaces `to` with `from` (same file system).
    static func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 { throw ShardError.io(file: to, operation: "rename \(from) to", message: errnoMessage()) }
    }

    /// Writes `bytes` to `path` atomically: a temporary sibling, fsync, rename, fsync of the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temp = path + ".tmp-\(getpid())"
        do {
            let f = try OutputFile(path: temp)
            try f.write(bytes)
            try f.syncAndClose()
            try rename(temp, to: path)
        } catch {
            unlink(temp)
            throw error
        }
        try syncDirectory(directoryName(path))
    }
}

/// The directory part of a path ("." when there is none).
func directoryName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let dir = String(path[..<slash])
    return dir.isEmpty ? "/" : dir
}

/// The last path component.
func fileName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
