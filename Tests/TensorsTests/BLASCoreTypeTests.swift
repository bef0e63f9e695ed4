import Tensors
import XCTest

/// The CLI restarts with `OPENBLAS_CORETYPE` only when OpenBLAS picked kernels without AVX2 on a
/// CPU that has AVX2 or AVX-512 (`BLAS.betterCoreType`), never over a choice that uses them.
final class BLASCoreTypeTests: XCTestCase {
    func testAFallbackBelowTheCPUIsReplacedByItsKernelSet() {
        XCTAssertEqual(BLAS.betterCoreType(picked: "Prescott", avx512: true, avx2: true), "SkylakeX")
        XCTAssertEqual(BLAS.betterCoreType(picked: "Prescott", avx512: false, avx2: true), "Haswell")
        XCTAssertEqual(BLAS.betterCoreType(picked: "Nehalem", avx512: false, avx2: true), "Haswell")
        XCTAssertEqual(BLAS.betterCoreType(picked: "Sandybridge", avx512: true, avx2: true), "SkylakeX")
        XCTAssertNil(BLAS.betterCoreType(picked: "Prescott", avx512: false, avx2: false), "an SSE-only CPU keeps what it has")
    }

    func testAChoiceThatUsesAVX2OrAVX512IsKept() {
        for core in ["Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen", "ARMV8", "NEOVERSEN1"] {
            XCTAssertNil(BLAS.betterCoreType(picked: core, avx512: true, avx2: true), core)
        }
    }

    /// The name this process's OpenBLAS reports is one it knows (not empty).
    func testThisProcessReportsItsKernelSet() {
        XCTAssertFalse(BLAS.coreName.isEmpty)
        print("OpenBLAS kernel set here: \(BLAS.coreName) (OPENBLAS_CORETYPE \(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"))")
    }
}
