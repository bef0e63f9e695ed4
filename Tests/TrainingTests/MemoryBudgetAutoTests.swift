import XCTest
@testable import Training

/// `--memory-budget auto`: the tightest cgroup limit over the process's group and its
/// ancestors (v1 and v2), else a stated share of MemAvailable.
final class MemoryBudgetAutoTests: XCTestCase {
    let v1 = "12:pids:/\n4:memory:/jobs/run7\n1:cpu:/\n0::/\n"

    func testV1LimitFilesRunFromTheOwnGroupUpToTheRoot() {
        let files = SystemMemory.limitFiles(procSelfCgroup: "4:memory:/jobs/run7\n", root: "/cg")
        XCTAssertEqual(files, ["/cg/memory/jobs/run7/memory.limit_in_bytes", "/cg/memory/jobs/memory.limit_in_bytes",
                               "/cg/memory/memory.limit_in_bytes"])
    }

    func testTheTightestLimitWinsAndUnlimitedOrMaxAreIgnored() {
        let files = [
            "/cg/memory/jobs/run7/memory.limit_in_bytes": "9223372036854771712\n",  // v1's "no limit"
            "/cg/memory/jobs/memory.limit_in_bytes": "536870912\n",                 // 512 MiB on the parent
            "/cg/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "/cg/unified/memory.max": "max\n",
        ]
        let limit = SystemMemory.tightestLimit(procSelfCgroup: v1, root: "/cg") { files[$0] }
        XCTAssertEqual(limit?.bytes, 512 << 20)
        XCTAssertEqual(limit?.file, "/cg/memory/jobs/memory.limit_in_bytes")
        XCTAssertNil(SystemMemory.tightestLimit(procSelfCgroup: v1, root: "/cg") { _ in "9223372036854771712" })
        XCTAssertNil(SystemMemory.tightestLimit(procSelfCgroup: v1, root: "/cg") { _ in nil })
    }

    func testV2MemoryMaxIsRead() {
        let limit = SystemMemory.tightestLimit(procSelfCgroup: "0::/user.slice/job\n", root: "/cg") {
            $0 == "/cg/unified/user.slice/job/memory.max" ? "1073741824\n" : "max\n"
        }
        XCTAssertEqual(limit?.bytes, 1 << 30)
    }

    func testMemAvailableIsReadInBytes() {
        XCTAssertEqual(SystemMemory.memAvailable(meminfo: "MemTotal:  100 kB\nMemAvailable:   2048 kB\n"), 2 << 20)
        XCTAssertNil(SystemMemory.memAvailable(meminfo: "MemTotal: 100 kB\n"))
        XCTAssertNotNil(SystemMemory.current().memAvailable, "this machine's /proc/meminfo")
    }

    func testAutoTakesTheCgroupLimitElseTheStatedShareOfMemAvailable() {
        let capped = SystemMemory(cgroupLimit: (300 << 20, "/cg/memory/x/memory.limit_in_bytes"), memAvailable: 8 << 30)
        XCTAssertEqual(MemoryBudget.resolve("auto") { capped },
                       ResolvedBudget(bytes: 300 << 20, source: "the cgroup limit in /cg/memory/x/memory.limit_in_bytes"))
        let free = SystemMemory(cgroupLimit: nil, memAvailable: 1000 << 20)
        XCTAssertEqual(MemoryBudget.resolve("AUTO") { free }?.bytes, 800 << 20)
        XCTAssertNil(MemoryBudget.resolve("auto") { SystemMemory(cgroupLimit: nil, memAvailable: nil) })
        XCTAssertEqual(MemoryBudget.resolve("256MiB") { capped }, ResolvedBudget(bytes: 256 << 20, source: "given"))
        XCTAssertNil(MemoryBudget.resolve("automatic") { free })
    }
}
