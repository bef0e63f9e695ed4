#if canImport(Glibc)
import Glibc
#endif
import MemoryLedger

/// The operating system's view of the process, reported next to the ledger as a cross-check:
/// the difference is what the ledger does not count (runtime, code, allocator slack, page cache
/// of mapped shards).
public struct ProcessFigures: Equatable, Sendable, Codable {
    /// Peak resident set size (VmHWM), bytes.
    public var peakRSS: Int
    /// Resident set size when the profile was captured (VmRSS), bytes.
    public var currentRSS: Int
    /// getrusage's ru_maxrss, bytes (never reset, so it covers the whole process lifetime).
    public var maxRSS: Int
    /// The memory cgroup's peak usage, bytes, when the run was placed in one.
    public var cgroupPeak: Int?
    /// Resident set size before the mode's first tensor, bytes: runtime and code, roughly.
    public var startRSS: Int?
    /// What backed the resident pages when the profile was captured (/proc/self/smaps), and the
    /// ledger's live bytes at that moment: the measured split of what the ledger does not count.
    public var resident: ResidentSplit?
    public var ledgerLiveAtCapture: Int?

    public init(peakRSS: Int, currentRSS: Int, maxRSS: Int, cgroupPeak: Int? = nil, startRSS: Int? = nil) {
        self.peakRSS = peakRSS
        self.currentRSS = currentRSS
        self.maxRSS = maxRSS
        self.cgroupPeak = cgroupPeak
        self.startRSS = startRSS
    }

    /// From a `ProcessMemory.read()`.
    public init(_ memory: ProcessMemory, cgroupPeak: Int? = nil, startRSS: Int? = nil) {
        self.init(peakRSS: memory.peakRSS, currentRSS: memory.currentRSS, maxRSS: memory.maxRSS,
                  cgroupPeak: cgroupPeak, startRSS: startRSS)
    }

    /// Reads a memory cgroup's peak usage: `memory.max_usage_in_bytes` (cgroup v1) or
    /// `memory.peak` (cgroup v2) in `directory`. Nil when neither file can be read.
    public static func cgroupPeak(in directory: String) -> Int? {
        for file in ["memory.max_usage_in_bytes", "memory.peak"] {
            let text = readSmallFile(directory + "/" + file)
            if let value = Int(text.filter { $0.isNumber }), !text.isEmpty { return value }
        }
        return nil
    }

    private static func readSmallFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 256) }
        return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
    }
}
