import NumericTestSupport
import Tensors
import XCTest

/// BLAS.gemm against a Float64 triple loop, for every transpose case, with row strides wider
/// than the matrices (lda, ldb, ldc) and both alpha and beta in play.
///
/// Every element of C = alpha op(A) op(B) + beta C is a Float32 sum of k products, scaled by
/// alpha, plus beta C: whatever the kernel's blocking, FMA use and order, it is within
/// `RoundingBound.ofSum` of the exact value with k + 2 terms (the products and additions of
/// the sum, alpha's product, beta C's product and the final addition) and sum of magnitudes
/// |alpha| (|op(A)| |op(B)|)_ij + |beta| |C_ij|.
final class GemmTests: XCTestCase {
    /// Runs BLAS.gemm on Float copies of the stored operands; returns C as stored (ldc wide).
    private func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: [Double], lda: Int,
                      b: [Double], ldb: Int, beta: Double, c: [Double], ldc: Int) -> [Double] {
        let a = a.map { Float($0) }, b = b.map { Float($0) }
        var c = c.map { Float($0) }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: Float(alpha),
                              a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                              beta: Float(beta), c: cp.baseAddress!, ldc: ldc)
                }
            }
        }
        return c.map { Double($0) }
    }

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
                let magnitudes = Reference.matmul(opA.map(abs), opB.map(abs), m: m, k: k, n: n)
                // Padding columns of C (j >= n) keep their original values exactly.
                var expected = cStored.map { Rounded(exact: $0) }
                for i in 0..<m {
                    for j in 0..<n {
                        let c = cStored[i * ldc + j]
                        expected[i * ldc + j] = .ofSum(terms: k + 2, exact: alpha * product[i * n + j] + beta * c,
                                                       absoluteSum: abs(alpha) * magnitudes[i * n + j] + abs(beta) * abs(c))
                    }
                }
                let what = "gemm transA \(transA) transB \(transB)"
                let c = gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: aStored, lda: lda,
                             b: bStored, ldb: ldb, beta: beta, c: cStored, ldc: ldc)
                assertWithinBound(c, expected, what)
                // Broken variant: the last of the k products left out of every sum.
                let missingTerm = gemm(transA: transA, transB: transB, m: m, n: n, k: k - 1, alpha: alpha, a: aStored, lda: lda,
                                       b: bStored, ldb: ldb, beta: beta, c: cStored, ldc: ldc)
                assertBoundCatches(missingTerm, expected, "\(what) without its last product")
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
                let expected = Rounded.ofSums(terms: k, exact: Reference.matmul(opA, opB, m: m, k: k, n: n),
                                              absoluteSums: Reference.matmul(opA.map(abs), opB.map(abs), m: m, k: k, n: n))
                assertWithinBound(c.doubles, expected, "tensor gemm transA \(transA) transB \(transB)")
            }
        }
    }

    func testTensorGemmAccumulatesWithBetaOne() {
        var random = TestRandom(seed: 13)
        let a = random.uniform(2 * 3), b = random.uniform(3 * 2), c0 = random.uniform(4)
        let c = makeTensor([2, 2], c0)
        BLAS.gemm(makeTensor([2, 3], a), makeTensor([3, 2], b), into: c, beta: 1)
        // C + A B is a sum of 3 + 1 terms.
        let expected = Rounded.ofSums(terms: 3 + 1, exact: zip(Reference.matmul(a, b, m: 2, k: 3, n: 2), c0).map { $0 + $1 },
                                      absoluteSums: zip(Reference.matmul(a.map(abs), b.map(abs), m: 2, k: 3, n: 2), c0).map { $0 + abs($1) })
        assertWithinBound(c.doubles, expected, "C += A B")
        // Broken variant: C overwritten instead of accumulated (beta 0).
        let overwritten = zeros([2, 2])
        BLAS.gemm(makeTensor([2, 3], a), makeTensor([3, 2], b), into: overwritten)
        assertBoundCatches(overwritten.doubles, expected, "C = A B where C += A B was asked for")
    }
}
