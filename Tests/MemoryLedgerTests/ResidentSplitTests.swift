import Foundation
import MemoryLedger
import XCTest

final class ResidentSplitTests: XCTestCase {
    /// Each mapping's Rss goes to the class its header line names: the executable and shared
    /// libraries, shard files, other files, and anonymous mappings (named or not).
    func testSmapsMappingsAreClassifiedByWhatBacksThem() {
        let smaps = """
        55d0c0000000-55d0c0100000 r-xp 00000000 08:01 1234    /opt/bin/layerwise
        Size:               1024 kB
        Rss:                 800 kB
        7f0000000000-7f0000200000 r-xp 00000000 08:01 99      /usr/lib/x86_64-linux-gnu/libopenblas.so.0
        Rss:                1500 kB
        7f0000300000-7f0000400000 r--p 00000000 08:01 98      /usr/lib/libdnnl.so
        Rss:                  10 kB
        7f1000000000-7f1000800000 r--s 00000000 08:01 77      /data/fm/train-00000.zshard
        Rss:                2048 kB
        7f2000000000-7f2000010000 r--p 00000000 08:01 66      /usr/lib/locale/C.utf8/LC_CTYPE
        Rss:                  12 kB
        55d0c1000000-55d0c2000000 rw-p 00000000 00:00 0       [heap]
        Rss:                4096 kB
        7f3000000000-7f3004000000 rw-p 00000000 00:00 0
        Rss:                 300 kB
        7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0       [stack]
        Rss:                  20 kB
        """
        let split = ResidentSplit.parse(smaps, executable: "/opt/bin/layerwise")
        XCTAssertEqual(split.codeAndLibraries, (800 + 1500 + 10) * 1024)
        XCTAssertEqual(split.mappedShards, 2048 * 1024)
        XCTAssertEqual(split.otherFiles, 12 * 1024)
        XCTAssertEqual(split.anonymous, (4096 + 300 + 20) * 1024)
    }

    /// On this process: the classes add up to about VmRSS, and touching every page of a mapped
    /// shard file shows up as mapped shard pages.
    func testALiveShardMappingIsCountedAsShardPages() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("split-\(UUID().uuidString).zshard").path
        let size = 8 << 20
        try Data(repeating: 7, count: size).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = ResidentSplit.read()
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let base = try XCTUnwrap(mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0))
        defer { munmap(base, size) }
        var sum = 0
        for offset in stride(from: 0, to: size, by: 4096) { sum &+= Int(base.load(fromByteOffset: offset, as: UInt8.self)) }
        XCTAssertEqual(sum, 7 * size / 4096)
        let after = ResidentSplit.read()
        XCTAssertGreaterThanOrEqual(after.mappedShards - before.mappedShards, size)
        XCTAssertGreaterThan(after.codeAndLibraries, 0)
        let rss = ProcessMemory.read().currentRSS
        XCTAssertLessThan(abs(after.total - rss), 4 << 20, "smaps total \(after.total) vs VmRSS \(rss)")
    }
}
