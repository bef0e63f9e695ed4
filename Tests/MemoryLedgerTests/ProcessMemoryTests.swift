import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import MemoryLedger

final class ProcessMemoryTests: XCTestCase {
    #if os(Linux)
    func testReadsNonZeroRSSAndPeakIsAtLeastCurrent() {
        let memory = ProcessMemory.read()
        XCTAssertGreaterThan(memory.currentRSS, 1 << 20, "a Swift test process holds more than 1 MiB")
        XCTAssertGreaterThanOrEqual(memory.peakRSS, memory.currentRSS)
        XCTAssertGreaterThan(memory.maxRSS, 0)
    }

    func testRSSGrowsWhenPagesAreTouched() {
        // Fresh anonymous pages straight from the kernel: malloc may hand back heap pages that are
        // already resident (the ledger keeps freed tensors in the heap), which would not add RSS.
        let bytes = 64 << 20
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else { return XCTFail("mmap of \(bytes) bytes failed") }
        defer { munmap(mapped, bytes) }
        let p = mapped
        let before = ProcessMemory.read().currentRSS
        // Touch one byte per page so the kernel maps every page.
        for offset in stride(from: 0, to: bytes, by: 4096) { p.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self) }
        let after = ProcessMemory.read()
        XCTAssertGreaterThan(after.currentRSS - before, bytes / 2)
        XCTAssertGreaterThanOrEqual(after.peakRSS, after.currentRSS)
    }
    #endif

    func testKilobyteFieldParsing() {
        let status = "Name:\tx\nVmHWM:\t  1234 kB\nVmRSS:\t   56 kB\n"
        XCTAssertEqual(ProcessMemory.kilobytes(of: "VmHWM:", in: status), 1234)
        XCTAssertEqual(ProcessMemory.kilobytes(of: "VmRSS:", in: status), 56)
        XCTAssertEqual(ProcessMemory.kilobytes(of: "VmSwap:", in: status), 0)
    }
}
