import Tensors
import XCTest

/// bf16 is refused everywhere, and the sentence says why: the missing CPU feature, oneDNN's ISA
/// cap, or the build. fp32 always runs.
final class ComputePrecisionTests: XCTestCase {
    typealias Features = ComputePrecision.CPUFeatures

    func testFP32RunsOnEveryCPU() {
        XCTAssertNil(ComputePrecision.fp32.refusal(features: Features(avx512BF16: false, amxBF16: false, oneDNNMaxISA: nil)))
        XCTAssertNil(ComputePrecision.fp32.refusal())
    }

    func testBF16WithoutTheInstructionsNamesThem() throws {
        let text = try XCTUnwrap(ComputePrecision.bf16.refusal(features: Features(avx512BF16: false, amxBF16: false, oneDNNMaxISA: nil)))
        XCTAssertTrue(text.contains("AVX512_BF16 or AMX-BF16"), text)
        XCTAssertTrue(text.contains("--precision fp32"), text)
    }

    func testBF16UnderAnISACapBelowBF16NamesTheCap() throws {
        let capped = Features(avx512BF16: true, amxBF16: false, oneDNNMaxISA: "AVX512_CORE")
        let text = try XCTUnwrap(ComputePrecision.bf16.refusal(features: capped))
        XCTAssertTrue(text.contains("ONEDNN_MAX_CPU_ISA=AVX512_CORE"), text)
        let open = Features(avx512BF16: true, amxBF16: false, oneDNNMaxISA: "AVX512_CORE_BF16")
        XCTAssertFalse(try XCTUnwrap(ComputePrecision.bf16.refusal(features: open)).contains("ONEDNN_MAX_CPU_ISA"))
    }

    func testBF16OnACapableCPUSaysTheBuildHasNoBF16Convolutions() throws {
        let text = try XCTUnwrap(ComputePrecision.bf16.refusal(features: Features(avx512BF16: false, amxBF16: true, oneDNNMaxISA: nil)))
        XCTAssertTrue(text.contains("no bf16 convolutions"), text)
    }

    func testThisMachinesRefusalMatchesItsCPUFlags() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let text = try XCTUnwrap(ComputePrecision.bf16.refusal())
        if !flags.isEmpty && !flags.contains("avx512_bf16") && !flags.contains("amx_bf16") {
            XCTAssertTrue(text.contains("this one has neither"), text)
        }
    }
}
