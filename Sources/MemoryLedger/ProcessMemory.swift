#if canImport(Glibc)
import Glibc
#endif

/// The operating system's view of this process's memory, for cross-checks against the ledger.
public struct ProcessMemory: Sendable, Codable, Equatable {
    /// Resident set size now (VmRSS), bytes.
    public var currentRSS: Int
    /// Peak resident set size (VmHWM), bytes.
    public var peakRSS: Int
    /// getrusage's ru_maxrss, bytes.
    public var maxRSS: Int

    /// Reads /proc/self/status and getrusage. Fields the system does not provide read as 0.
    public static func read() -> ProcessMemory {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let status = readProcFile("/proc/self/status")
        return ProcessMemory(currentRSS: kilobytes(of: "VmRSS:", in: status) * 1024,
                             peakRSS: kilobytes(of: "VmHWM:", in: status) * 1024,
                             maxRSS: Int(usage.ru_maxrss) * 1024)
    }

    /// Resets the kernel's peak RSS (VmHWM) to the current RSS, where the kernel allows it.
    @discardableResult
    public static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return Glibc.write(fd, "5", 1) == 1
    }

    static func kilobytes(of key: String, in text: String) -> Int {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let digits = line.dropFirst(key.count).filter { $0.isNumber }
            return Int(String(digits)) ?? 0
        }
        return 0
    }

    static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 4096) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Where the process's resident pages are, by what backs them, from /proc/self/smaps: the
/// measured split of the memory the ledger does not count.
public struct ResidentSplit: Sendable, Codable, Equatable {
    /// Pages of the executable and shared libraries (code, read-only data).
    public var codeAndLibraries: Int = 0
    /// Pages of memory-mapped shard files (`.zshard`), the loader's page cache.
    public var mappedShards: Int = 0
    /// Pages of other mapped files (checkpoints, locale data, ...).
    public var otherFiles: Int = 0
    /// Anonymous pages: malloc's heap and mmapped blocks (tensors among them), thread stacks, the
    /// BLAS's and oneDNN's own buffers.
    public var anonymous: Int = 0

    public init() {}

    public var total: Int { codeAndLibraries + mappedShards + otherFiles + anonymous }

    /// Reads /proc/self/smaps (all zero where it cannot be read).
    public static func read() -> ResidentSplit {
        parse(ProcessMemory.readProcFile("/proc/self/smaps"), executable: executablePath())
    }

    /// Sums each mapping's `Rss:` into its class; a mapping's header line names its file, if any.
    public static func parse(_ smaps: String, executable: String?) -> ResidentSplit {
        var split = ResidentSplit()
        var path = ""
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            if let first = line.first, first.isHexDigit, line.contains("-") {
                // "start-end perms offset dev inode   path": the path is the sixth field onwards.
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                path = fields.count == 6 ? String(fields[5].drop(while: { $0 == " " })) : ""
                continue
            }
            guard line.hasPrefix("Rss:") else { continue }
            let bytes = ProcessMemory.kilobytes(of: "Rss:", in: String(line)) * 1024
            if path.isEmpty || path.hasPrefix("[") {
                split.anonymous += bytes
            } else if path.hasSuffix(".zshard") {
                split.mappedShards += bytes
            } else if path == executable || path.hasSuffix(".so") || path.contains(".so.") {
                split.codeAndLibraries += bytes
            } else {
                split.otherFiles += bytes
            }
        }
        return split
    }

    static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
