import NumericTestSupport
import Tensors
import XCTest

/// BLAS.gemm against a Float64 triple loop, for every transpose case, with row strides wider
/// than the matrices (lda, ldb, ldc) and both alpha and beta in play.
final class GemmTests: XCTestCase {
    func testRawGemmAllTransposeCasesWithPaddedStrides() {
        let (m, n, k) = (3, 4, 5)
        let alpha = 0.5, beta = -2.0
        var random = TestRandom(seed: 11)
        for transA in [false, true] {
            for transB in [false, true] {
                // As stored: A is (m, k), or (k, m) when transposed; B is (k, n), or (n, k).
                let (aRows, aCols) = transA ? (k, m) : (m, k)
                let (bRows, bCols) = transB ? (n, k) : (k, n)
                let lda = aCols + 2, ldb = bCols + 3, ldc = n + 1
                let aStored = random.uniform(aRows * lda), bStored = random.uniform(bRows * ldb)
                let cStored = random.uniform(m * ldc)
                // Dense op(A) (m, k) and op(B) (k, n) read from the strided storage.
                var opA = [Double](repeating: 0, count: m * k), opB = [Double](repeating: 0, count: k * n)
                for i in 0..<m { for p in 0..<k { opA[i * k + p] = transA ? aStored[p * lda + i] : aStored[i * lda + p] } }
                for p in 0..<k { for j in 0..<n { opB[p * n + j] = transB ? bStored[j * ldb + p] : bStored[p * ldb + j] } }
                let product = Reference.matmul(opA, opB, m: m, k: k, n: n)
                var expected = cStored
                for i in 0..<m { for j in 0..<n { expected[i * ldc + j] = alpha * product[i * n + j] + beta * cStored[i * ldc + j] } }

                let a = aStored.map { Float($0) }, b = bStored.map { Float($0) }
                var c = cStored.map { Float($0) }
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        c.withUnsafeMutableBufferPointer { cp in
                            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: Float(alpha),
                                      a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                      beta: Float(beta), c: cp.baseAddress!, ldc: ldc)
                        }
                    }
                }
                // Padding columns of C (j >= n) are the original values: expected holds them.
                assertClose(c.map { Double($0) }, expected, tolerance: 1e-5, "gemm transA \(transA) transB \(transB)")
            }
        }
    }

    func testTensorGemmAllTransposeCases() {
        let (m, n, k) = (4, 3, 6)
        var random = TestRandom(seed: 12)
        for transA in [false, true] {
            for transB in [false, true] {
                let aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n]
                let aValues = random.uniform(m * k), bValues = random.uniform(k * n)
                let opA = transA ? Reference.transpose(aValues, rows: k, cols: m) : aValues
                let opB = transB ? Reference.transpose(bValues, rows: n, cols: k) : bValues
                let c = zeros([m, n])
                BLAS.gemm(makeTensor(aShape, aValues), makeTensor(bShape, bValues), into: c, transposeA: transA, transposeB: transB)
                assertClose(c.doubles, Reference.matmul(opA, opB, m: m, k: k, n: n), tolerance: 1e-5,
                            "tensor gemm transA \(transA) transB \(transB)")
            }
        }
    }

    func testTensorGemmAccumulatesWithBetaOne() {
        var random = TestRandom(seed: 13)
        let a = random.uniform(2 * 3), b = random.uniform(3 * 2), c0 = random.uniform(4)
        let c = makeTensor([2, 2], c0)
        BLAS.gemm(makeTensor([2, 3], a), makeTensor([3, 2], b), into: c, beta: 1)
        let expected = zip(Reference.matmul(a, b, m: 2, k: 3, n: 2), c0).map { $0 + $1 }
        assertClose(c.doubles, expected, tolerance: 1e-6, "C += A B")
    }
}
