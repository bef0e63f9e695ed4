import NumericTestSupport
import Tensors
import XCTest

/// LinearKernel: y = x W^T + b and its backward.
final class LinearKernelTests: XCTestCase {
    let (batch, inFeatures, outFeatures) = (5, 4, 3)

    func testForwardWithAndWithoutBiasMatchesReference() {
        var random = TestRandom(seed: 21)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures), b = random.uniform(outFeatures)
        let y = zeros([batch, outFeatures])
        y.fill(7)  // stale contents must not leak into the result
        LinearKernel.forward(x: makeTensor([batch, inFeatures], x), weight: makeTensor([outFeatures, inFeatures], w),
                             bias: makeTensor([outFeatures], b), into: y)
        assertClose(y.doubles, Reference.linear(x, batch: batch, weight: w, outFeatures: outFeatures, bias: b), tolerance: 1e-6, "with bias")
        y.fill(7)
        LinearKernel.forward(x: makeTensor([batch, inFeatures], x), weight: makeTensor([outFeatures, inFeatures], w),
                             bias: nil, into: y)
        assertClose(y.doubles, Reference.linear(x, batch: batch, weight: w, outFeatures: outFeatures, bias: nil), tolerance: 1e-6, "no bias")
    }

    /// L = sum(y * R). The forward is linear in each of x, W and b, so finite differences of the
    /// Float32 kernel itself with a large step are exact up to rounding.
    func testBackwardMatchesFiniteDifferences() {
        var random = TestRandom(seed: 22)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures)
        let b = random.uniform(outFeatures), r = random.uniform(batch * outFeatures)
        func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            let y = zeros([batch, outFeatures])
            LinearKernel.forward(x: makeTensor([batch, inFeatures], x), weight: makeTensor([outFeatures, inFeatures], w),
                                 bias: makeTensor([outFeatures], b), into: y)
            return dot(y.doubles, r)
        }
        let dx = zeros([batch, inFeatures]), dw = zeros([outFeatures, inFeatures]), db = zeros([outFeatures])
        LinearKernel.backward(dy: makeTensor([batch, outFeatures], r), x: makeTensor([batch, inFeatures], x),
                              weight: makeTensor([outFeatures, inFeatures], w), weightGrad: dw, biasGrad: db, inputGrad: dx)
        let step = 0.25
        let nx = numericalGradient(at: x, step: step) { loss($0, w, b) }
        let nw = numericalGradient(at: w, step: step) { loss(x, $0, b) }
        let nb = numericalGradient(at: b, step: step) { loss(x, w, $0) }
        assertGradientsMatch(dx.doubles, nx, "dx")
        assertGradientsMatch(dw.doubles, nw, "dW")
        assertGradientsMatch(db.doubles, nb, "db")
        assertMutationDetected(dw.doubles, nw, "dW")
    }

    func testBackwardAccumulateAddsToExistingGradients() {
        var random = TestRandom(seed: 23)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures), r = random.uniform(batch * outFeatures)
        let w0 = random.uniform(outFeatures * inFeatures), b0 = random.uniform(outFeatures)
        let dw = makeTensor([outFeatures, inFeatures], w0), db = makeTensor([outFeatures], b0)
        LinearKernel.backward(dy: makeTensor([batch, outFeatures], r), x: makeTensor([batch, inFeatures], x),
                              weight: makeTensor([outFeatures, inFeatures], w), weightGrad: dw, biasGrad: db, inputGrad: nil,
                              accumulate: true)
        // dW = R^T x, db = column sums of R
        let expectedW = zip(w0, Reference.matmul(Reference.transpose(r, rows: batch, cols: outFeatures), x,
                                                 m: outFeatures, k: batch, n: inFeatures)).map { $0 + $1 }
        let expectedB = (0..<outFeatures).map { o in b0[o] + (0..<batch).reduce(0) { $0 + r[$1 * outFeatures + o] } }
        assertClose(dw.doubles, expectedW, tolerance: 1e-6, "accumulated dW")
        assertClose(db.doubles, expectedB, tolerance: 1e-6, "accumulated db")
    }
}
