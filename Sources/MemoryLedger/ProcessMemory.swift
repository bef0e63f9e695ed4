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
