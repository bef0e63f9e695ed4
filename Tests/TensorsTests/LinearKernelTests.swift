import NumericTestSupport
import Tensors
import XCTest

/// LinearKernel: y = x W^T + b and its backward, against Float64 within the rounding bound of
/// each element's sum (`RoundingBound.ofSum`): y sums In products and the bias, dW sums B
/// products, db sums B values, dx sums Out products.
final class LinearKernelTests: XCTestCase {
    let (batch, inFeatures, outFeatures) = (5, 4, 3)

    /// y = x W^T (+ b) as exact values with their bounds: sum of |x_ip W_op| (+ |b_o|).
    private func expectedForward(_ x: [Double], _ w: [Double], _ b: [Double]?) -> [Rounded] {
        let exact = Reference.linear(x, batch: batch, weight: w, outFeatures: outFeatures, bias: b)
        let magnitudes = Reference.linear(x.map(abs), batch: batch, weight: w.map(abs), outFeatures: outFeatures, bias: b?.map(abs))
        return Rounded.ofSums(terms: inFeatures + (b == nil ? 0 : 1), exact: exact, absoluteSums: magnitudes)
    }

    func testForwardWithAndWithoutBiasMatchesReference() {
        var random = TestRandom(seed: 21)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures), b = random.uniform(outFeatures)
        let y = zeros([batch, outFeatures])
        y.fill(7)  // stale contents must not leak into the result
        LinearKernel.forward(x: makeTensor([batch, inFeatures], x), weight: makeTensor([outFeatures, inFeatures], w),
                             bias: makeTensor([outFeatures], b), into: y)
        let withBias = expectedForward(x, w, b)
        assertWithinBound(y.doubles, withBias, "with bias")
        y.fill(7)
        LinearKernel.forward(x: makeTensor([batch, inFeatures], x), weight: makeTensor([outFeatures, inFeatures], w),
                             bias: nil, into: y)
        assertWithinBound(y.doubles, expectedForward(x, w, nil), "no bias")
        // Broken variant: the bias term left out of the sums.
        assertBoundCatches(y.doubles, withBias, "a forward without the bias")
    }

    /// L = sum(y * R): dx = R W, dW = R^T x, db = column sums of R, each within the bound of its
    /// sum (the exact gradients of a function linear in each argument: no finite-difference
    /// error to allow for).
    func testBackwardMatchesFloat64GradientsWithinTheRoundingBound() {
        var random = TestRandom(seed: 22)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures)
        let r = random.uniform(batch * outFeatures)
        let dx = zeros([batch, inFeatures]), dw = zeros([outFeatures, inFeatures]), db = zeros([outFeatures])
        LinearKernel.backward(dy: makeTensor([batch, outFeatures], r), x: makeTensor([batch, inFeatures], x),
                              weight: makeTensor([outFeatures, inFeatures], w), weightGrad: dw, biasGrad: db, inputGrad: dx)
        let rT = Reference.transpose(r, rows: batch, cols: outFeatures)
        let expectedX = Rounded.ofSums(terms: outFeatures, exact: Reference.matmul(r, w, m: batch, k: outFeatures, n: inFeatures),
                                       absoluteSums: Reference.matmul(r.map(abs), w.map(abs), m: batch, k: outFeatures, n: inFeatures))
        let expectedW = Rounded.ofSums(terms: batch, exact: Reference.matmul(rT, x, m: outFeatures, k: batch, n: inFeatures),
                                       absoluteSums: Reference.matmul(rT.map(abs), x.map(abs), m: outFeatures, k: batch, n: inFeatures))
        let expectedB = (0..<outFeatures).map { o in
            Rounded.sum((0..<batch).map { Rounded(exact: r[$0 * outFeatures + o]) })
        }
        assertWithinBound(dx.doubles, expectedX, "dx")
        assertWithinBound(dw.doubles, expectedW, "dW")
        assertWithinBound(db.doubles, expectedB, "db")
        // Broken variant: dW from dy with its rows read one example off (dy of example b + 1
        // paired with x of example b).
        let shifted = Array(r.dropFirst(outFeatures)) + r.prefix(outFeatures)
        let wrongPairing = zeros([outFeatures, inFeatures])
        LinearKernel.backward(dy: makeTensor([batch, outFeatures], shifted), x: makeTensor([batch, inFeatures], x),
                              weight: makeTensor([outFeatures, inFeatures], w), weightGrad: wrongPairing, biasGrad: nil, inputGrad: nil)
        assertBoundCatches(wrongPairing.doubles, expectedW, "dW pairing dy and x of different examples")
    }

    func testBackwardAccumulateAddsToExistingGradients() {
        var random = TestRandom(seed: 23)
        let x = random.uniform(batch * inFeatures), w = random.uniform(outFeatures * inFeatures), r = random.uniform(batch * outFeatures)
        let w0 = random.uniform(outFeatures * inFeatures), b0 = random.uniform(outFeatures)
        let dw = makeTensor([outFeatures, inFeatures], w0), db = makeTensor([outFeatures], b0)
        LinearKernel.backward(dy: makeTensor([batch, outFeatures], r), x: makeTensor([batch, inFeatures], x),
                              weight: makeTensor([outFeatures, inFeatures], w), weightGrad: dw, biasGrad: db, inputGrad: nil,
                              accumulate: true)
        // dW = W0 + R^T x, db = b0 + column sums of R: sums of B + 1 terms.
        let rT = Reference.transpose(r, rows: batch, cols: outFeatures)
        let expectedW = Rounded.ofSums(terms: batch + 1,
                                       exact: zip(w0, Reference.matmul(rT, x, m: outFeatures, k: batch, n: inFeatures)).map { $0 + $1 },
                                       absoluteSums: zip(w0, Reference.matmul(rT.map(abs), x.map(abs), m: outFeatures, k: batch, n: inFeatures)).map { abs($0) + $1 })
        let expectedB = (0..<outFeatures).map { o in
            Rounded.sum([Rounded(exact: b0[o])] + (0..<batch).map { Rounded(exact: r[$0 * outFeatures + o]) })
        }
        assertWithinBound(dw.doubles, expectedW, "accumulated dW")
        assertWithinBound(db.doubles, expectedB, "accumulated db")
    }
}
