import Benchmarks
import Tensors
import XCTest

final class ConvBenchmarkTests: XCTestCase {
    /// Smoke test: tiny shape, every pass reports a positive time.
    func testBenchmarkReportsEveryPass() {
        let g = ConvGeometry(inChannels: 2, outChannels: 3, height: 4, width: 4)
        let results = ConvBenchmark.run(shapes: [g], batch: 2, threads: 1, repeats: 1, engines: [.im2col])
        XCTAssertEqual(results.map(\.pass), ConvPass.allCases)
        XCTAssertTrue(results.allSatisfy { $0.seconds > 0 && $0.gflops > 0 && $0.workspaceBytes == ConvWorkspace.bytes(g, engine: .im2col) })
    }

    /// The real figures: `LAYERWISE_BENCH=1 swift test -c release --filter ConvBenchmarkTests`.
    func testVgg8bShapesWhenAskedFor() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["LAYERWISE_BENCH"] == "1", "set LAYERWISE_BENCH=1 (release build)")
        for result in ConvBenchmark.run() { print(result) }
    }
}
