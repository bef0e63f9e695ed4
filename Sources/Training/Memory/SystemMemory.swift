import Foundation
import MemoryLedger
import Reports

/// What the machine lets this process use: the tightest memory cgroup limit on the process's
/// own group and its ancestors (v1 `memory.limit_in_bytes`, v2 `memory.max`), and MemAvailable.
public struct SystemMemory: Sendable, Equatable {
    /// The tightest cgroup limit and the file it came from; nil when no group sets one.
    public var cgroupLimit: (bytes: Int, file: String)?
    /// /proc/meminfo's MemAvailable in bytes.
    public var memAvailable: Int?

    public init(cgroupLimit: (bytes: Int, file: String)?, memAvailable: Int?) {
        self.cgroupLimit = cgroupLimit
        self.memAvailable = memAvailable
    }

    public static func == (a: SystemMemory, b: SystemMemory) -> Bool {
        a.cgroupLimit?.bytes == b.cgroupLimit?.bytes && a.cgroupLimit?.file == b.cgroupLimit?.file && a.memAvailable == b.memAvailable
    }

    /// Reads this process's figures.
    public static func current(root: String = "/sys/fs/cgroup") -> SystemMemory {
        let cgroup = (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? ""
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        return SystemMemory(cgroupLimit: tightestLimit(procSelfCgroup: cgroup, root: root) { try? String(contentsOfFile: $0, encoding: .utf8) },
                            memAvailable: memAvailable(meminfo: meminfo))
    }

    /// Limits at or above 2^62 bytes mean "no limit" (v1 reports 9223372036854771712).
    static let unlimited = 1 << 62

    /// The limit files that apply to the process, from its own group up to the root: the v1
    /// memory controller's groups (`N:memory:/path`) and the v2 unified group (`0::/path`).
    static func limitFiles(procSelfCgroup: String, root: String) -> [String] {
        var files: [String] = []
        for line in procSelfCgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ","), path = String(fields[2])
            let (base, file): (String, String)
            if controllers.contains("memory") {
                (base, file) = (root + "/memory", "memory.limit_in_bytes")
            } else if fields[0] == "0" && fields[1].isEmpty {
                // v2: the unified hierarchy at the root itself, or under unified/ on hybrid systems.
                let unified = FileManager.default.fileExists(atPath: root + "/cgroup.controllers") ? root : root + "/unified"
                (base, file) = (unified, "memory.max")
            } else { continue }
            var components = path.split(separator: "/").map(String.init)
            while true {
                let dir = components.isEmpty ? base : base + "/" + components.joined(separator: "/")
                files.append(dir + "/" + file)
                if components.isEmpty { break }
                components.removeLast()
            }
        }
        return files
    }

    /// The smallest limit among `limitFiles`, read through `read` (nil for a missing file).
    static func tightestLimit(procSelfCgroup: String, root: String, read: (String) -> String?) -> (bytes: Int, file: String)? {
        var best: (bytes: Int, file: String)?
        for file in limitFiles(procSelfCgroup: procSelfCgroup, root: root) {
            guard let text = read(file)?.trimmingCharacters(in: .whitespacesAndNewlines), let bytes = Int(text),
                  bytes < unlimited else { continue }  // "max", missing or unlimited
            if best == nil || bytes < best!.bytes { best = (bytes, file) }
        }
        return best
    }

    /// MemAvailable from /proc/meminfo's text, in bytes.
    static func memAvailable(meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kib = Int(fields[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }
}

/// A `--memory-budget` value resolved to bytes, with where the number came from.
public struct ResolvedBudget: Sendable, Equatable {
    public var bytes: Int
    /// "given", "the cgroup limit in FILE", or "80% of MemAvailable (N)".
    public var source: String
}

extension MemoryBudget {
    /// The share of MemAvailable that `--memory-budget auto` takes when no cgroup sets a limit:
    /// the rest is left to the page cache, the other processes and what the ledger does not count.
    public static let availableFraction = 0.8

    /// `--memory-budget SIZE` (any form `ByteCount.parse` reads) or `auto`: the tightest cgroup
    /// limit that applies to the process, else `availableFraction` of MemAvailable. Nil for text
    /// that is neither, or `auto` on a machine that reports neither.
    public static func resolve(_ text: String, system: () -> SystemMemory = { SystemMemory.current() }) -> ResolvedBudget? {
        if let bytes = ByteCount.parse(text) { return ResolvedBudget(bytes: bytes, source: "given") }
        guard text.trimmingCharacters(in: .whitespaces).lowercased() == "auto" else { return nil }
        let facts = system()
        if let limit = facts.cgroupLimit {
            return ResolvedBudget(bytes: limit.bytes, source: "the cgroup limit in \(limit.file)")
        }
        guard let available = facts.memAvailable else { return nil }
        return ResolvedBudget(bytes: Int(Double(available) * availableFraction),
                              source: "\(Int(availableFraction * 100))% of MemAvailable (\(ByteFormat.human(available)))")
    }
}
