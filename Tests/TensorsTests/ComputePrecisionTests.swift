import Tensors
import XCTest

/// bf16 runs where the CPU has AVX512_BF16 or AMX-BF16 and oneDNN may use them; elsewhere it is
/// refused and the sentence says why: the missing CPU feature or oneDNN's ISA cap. fp32 always runs.
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
        XCTAssertNil(ComputePrecision.bf16.refusal(features: open), "a cap at or above bf16 leaves it running")
    }

    func testBF16RunsOnACapableCPUWithoutACap() {
        XCTAssertNil(ComputePrecision.bf16.refusal(features: Features(avx512BF16: false, amxBF16: true, oneDNNMaxISA: nil)))
        XCTAssertNil(ComputePrecision.bf16.refusal(features: Features(avx512BF16: true, amxBF16: false, oneDNNMaxISA: "avx512_core_amx")))
    }

    func testThisMachinesRefusalMatchesItsCPUFlags() throws {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard !flags.isEmpty else { throw XCTSkip("no /proc/cpuinfo") }
        let capable = flags.contains("avx512_bf16") || flags.contains("amx_bf16")
        let capped = !ComputePrecision.CPUFeatures.current.capAllowsBF16
        let refusal = ComputePrecision.bf16.refusal()
        XCTAssertEqual(refusal == nil, capable && !capped, refusal ?? "bf16 runs here")
        if !capable { XCTAssertTrue(refusal?.contains("this one has neither") ?? false, refusal ?? "") }
        XCTAssertEqual(ConvEngine.dnnlBF16.isAvailable, refusal == nil)
    }
}
