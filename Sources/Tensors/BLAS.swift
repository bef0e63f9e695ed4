import CBLAS

/// The one place that calls the BLAS. Matrices are row-major.
public enum BLAS {
    /// Sets the BLAS thread count (Layerwise sets it explicitly; default: all cores).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(max(1, n)))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's kernel set for this CPU, e.g. "Haswell", "SkylakeX", "Zen" (`openblas_get_corename`).
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// x86-64 kernel sets of OpenBLAS with neither AVX2 nor AVX-512 sgemm kernels.
    static let coresWithoutAVX2: Set<String> = [
        "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "yonah", "core2", "penryn", "dunnington",
        "nehalem", "atom", "sandybridge", "amd64", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat",
        "bulldozer", "piledriver", "steamroller", "excavator", "nano",
    ]

    /// The `OPENBLAS_CORETYPE` worth starting with when OpenBLAS picked (`picked`, its
    /// `coreName`) a kernel set without AVX2 on a CPU that has AVX2 or AVX-512: "SkylakeX" with
    /// AVX-512, "Haswell" with AVX2; nil when its choice uses what the CPU has. OpenBLAS
    /// falls back to Prescott (SSE3) on x86 CPUs newer than it knows: Debian 12's 0.3.21 does on
    /// an Intel Xeon of family 6 model 207 (AVX-512, AMX), where `layerwise bench train --model mlp
    /// --threads 1` ran 560 samples/s with Prescott's kernels and 1,953 with SkylakeX's.
    public static func betterCoreType(picked: String, avx512: Bool, avx2: Bool) -> String? {
        guard coresWithoutAVX2.contains(picked.lowercased()) else { return nil }
        return avx512 ? "SkylakeX" : avx2 ? "Haswell" : nil
    }

    /// C = alpha * op(A) * op(B) + beta * C, row-major.
    /// op(A) is (m, k), op(B) is (k, n), C is (m, n). `lda`, `ldb`, `ldc` are row strides of the
    /// matrices as stored (A is (k, m) when `transA`).
    @inline(__always)
    public static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let ta: CBLAS_TRANSPOSE = transA ? CblasTrans : CblasNoTrans
        let tb: CBLAS_TRANSPOSE = transB ? CblasTrans : CblasNoTrans
        let m32 = Int32(m), n32 = Int32(n), k32 = Int32(k)
        let lda32 = Int32(lda), ldb32 = Int32(ldb), ldc32 = Int32(ldc)
        cblas_sgemm(CblasRowMajor, ta, tb, m32, n32, k32, alpha, a, lda32, b, ldb32, beta, c, ldc32)
    }

    /// Convenience over tensors: C = alpha * op(A) op(B) + beta * C, for 2-D row-major tensors.
    public static func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, transposeA transA: Bool = false,
                            transposeB transB: Bool = false, alpha: Float = 1, beta: Float = 0) {
        let (ar, ac) = (a.rowCount, a.rowSize)
        let (br, bc) = (b.rowCount, b.rowSize)
        let m = transA ? ac : ar, k = transA ? ar : ac
        let kb = transB ? bc : br, n = transB ? br : bc
        precondition(k == kb, "gemm inner dimensions differ: \(a.shape)\(transA ? "^T" : "") x \(b.shape)\(transB ? "^T" : "")")
        precondition(c.rowCount == m && c.rowSize == n, "gemm output \(c.shape) is not \(m) x \(n)")
        gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.pointer, lda: ac,
             b: b.pointer, ldb: bc, beta: beta, c: c.pointer, ldc: n)
    }
}
