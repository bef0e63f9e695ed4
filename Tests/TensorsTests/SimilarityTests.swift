import NumericTestSupport
import Tensors
import XCTest

/// S(X) = clamp(U U^T), U = centred rows / (1e-8 + norm), and the sim loss
/// L = scale * mean((S(X) - T)^2) with its backward.
///
/// The kernels are compared with rounding models of their computation (`Rounded`, following
/// Similarity.swift's order of operations): row means and sums of squares over D terms, a
/// square root and a division per row, U U^T as D-term dot products (a GEMM: any kernel's
/// order); the backward's GEMM over B terms, per-row dots over D terms. The models' exact
/// values are the derivatives: they are checked against central differences of the Float64
/// reference in the finite-difference metric (`FiniteDifference.bound`).
final class SimilarityTests: XCTestCase {
    static let epsilon = Rounded.constant(1e-8)

    private struct Forward {
        var u, norms, raw: Tensor
    }

    private func forward(_ x: [Double], rows: Int) -> Forward {
        let cols = x.count / rows
        let f = Forward(u: zeros([rows, cols]), norms: zeros([rows]), raw: zeros([rows, rows]))
        Similarity.forward(makeTensor([rows, cols], x), normalized: f.u, norms: f.norms, raw: f.raw)
        return f
    }

    /// U, the row norms and U U^T as Similarity.forward computes them.
    struct ForwardModel {
        var u: [Rounded], norms: [Rounded], raw: [Rounded]
    }

    static func forwardModel(_ x: [Double], rows: Int) -> ForwardModel {
        let cols = x.count / rows
        var u: [Rounded] = [], norms: [Rounded] = []
        for i in 0..<rows {
            let row = x[(i * cols)..<((i + 1) * cols)].map { Rounded(exact: $0) }
            let mean = Rounded.sum(row) / Rounded(exact: Double(cols))
            let centred = row.map { $0 - mean }
            let norm = Rounded.dot(centred, centred).squareRoot()
            let factor = Rounded(exact: 1) / (epsilon + norm)
            norms.append(norm)
            u += centred.map { $0 * factor }
        }
        var raw: [Rounded] = []
        for i in 0..<rows {
            for j in 0..<rows { raw.append(Rounded.dot(Array(u[(i * cols)..<((i + 1) * cols)]), Array(u[(j * cols)..<((j + 1) * cols)]))) }
        }
        return ForwardModel(u: u, norms: norms, raw: raw)
    }

    /// dL/d(raw) of Similarity.meanSquaredError: 2 scale / n (clamp(raw) - t) where the computed
    /// raw is inside [-1, 1] (`inside`: the kernel's own decision), else exactly 0.
    static func rawGradModel(raw: [Rounded], target: [Double], scale: Double, inside: [Bool]) -> [Rounded] {
        let f = Rounded(exact: 2 * scale) / Rounded(exact: Double(raw.count))
        return raw.indices.map { i in inside[i] ? f * (raw[i].clamped() - Rounded(exact: target[i])) : Rounded(exact: 0) }
    }

    /// The loss: squares of clamp(raw) - t in Float32, summed in Double (its rounding, n u64
    /// relative, is far below the one Float32 rounding counted for it), rounded to Float, times
    /// scale, divided by n.
    static func lossModel(raw: [Rounded], target: [Double], scale: Double) -> Rounded {
        let squares = raw.indices.map { i -> Rounded in
            let d = raw[i].clamped() - Rounded(exact: target[i])
            return d * d
        }
        let exact = squares.reduce(0) { $0 + $1.exact }, propagated = squares.reduce(0) { $0 + $1.error }
        let total = Rounded(exact: exact, error: propagated + Rounded.u * (abs(exact) + propagated))
        return Rounded(exact: scale) * total / Rounded(exact: Double(raw.count))
    }

    /// Similarity.backward from dL/d(raw) (B, B), given as exact Float32 values or as a model.
    static func backwardModel(rawGrad g: [Rounded], forward f: ForwardModel, rows: Int) -> [Rounded] {
        let cols = f.u.count / rows
        var sym = g
        for i in 0..<rows { for j in 0..<rows { sym[i * rows + j] = g[i * rows + j] + g[j * rows + i] } }
        var dx: [Rounded] = []
        for i in 0..<rows {
            let ui = Array(f.u[(i * cols)..<((i + 1) * cols)])
            let dU = (0..<cols).map { k in Rounded.dot((0..<rows).map { sym[i * rows + $0] }, (0..<rows).map { f.u[$0 * cols + k] }) }
            let n = f.norms[i]
            let a = Rounded(exact: 1) / (epsilon + n), b = Rounded.dot(dU, ui) / n
            let c = (0..<cols).map { dU[$0] * a - ui[$0] * b }
            let mean = Rounded.sum(c) / Rounded(exact: Double(cols))
            dx += c.map { $0 - mean }
        }
        return dx
    }

    /// Central differences at h = 1e-6 of a loss of the Float64 reference: |f'''| < 1e4 for
    /// rows whose centred norm is above 0.5 (each derivative of U brings a factor 1/norm); one
    /// evaluation is ~10 B^2 D operations on magnitudes below 10.
    static func finiteDifferenceBound(rows: Int, cols: Int) -> Double {
        FiniteDifference.bound(step: 1e-6, thirdDerivative: 1e4, terms: 10 * rows * rows * cols, absoluteSum: 10)
    }

    /// Three examples whose similarity matrix is worked out by hand.
    /// x0 = [1, 2, 3]     -> centred [-1, 0, 1], norm sqrt 2
    /// x1 = [13, 12, 11]  -> centred [1, 0, -1], norm sqrt 2 (a large offset: centring matters)
    /// x2 = [-3, -5, -4]  -> centred [1, -1, 0], norm sqrt 2
    /// R = [[1, -1, -1/2], [-1, 1, 1/2], [-1/2, 1/2, 1]] (up to the 1e-8 in the normaliser,
    /// which moves R by 2e-8 / sqrt 2 relative).
    func testThreeExampleSimilarityMatrixByHand() {
        let x: [Double] = [1, 2, 3, 13, 12, 11, -3, -5, -4]
        let f = forward(x, rows: 3), model = Self.forwardModel(x, rows: 3)
        let s2 = 2.0.squareRoot()
        let byHand: [Double] = [1, -1, -0.5, -1, 1, 0.5, -0.5, 0.5, 1]
        let normaliser = 2e-8 / s2
        XCTAssertNil(RoundingBound.violation(model.norms.map(\.exact), [s2, s2, s2].map { Rounded(exact: $0, error: 1e-15) }))
        XCTAssertNil(RoundingBound.violation(model.raw.map(\.exact), byHand.map { Rounded(exact: $0, error: normaliser * abs($0) + 1e-15) }),
                     "the model's exact R is the hand value")
        assertWithinBound(f.norms.doubles, model.norms, "row norms after centring")
        assertWithinBound(f.u.doubles, model.u, "normalised rows")
        assertWithinBound(f.raw.doubles, model.raw, "raw R")
        let clamped = zeros([3, 3])
        Similarity.clamp(f.raw, into: clamped)
        assertWithinBound(clamped.doubles, model.raw.map { $0.clamped() }, "clamped R")
        XCTAssertTrue(clamped.array.allSatisfy { $0 >= -1 && $0 <= 1 })
        // Broken variant: rows not centred (x1's offset of 12 dominates its direction).
        let uncentred = Reference.matmul(x, Reference.transpose(x, rows: 3, cols: 3), m: 3, k: 3, n: 3).enumerated().map { i, v in
            v / (norm(Array(x[(i / 3 * 3)..<(i / 3 * 3 + 3)])) * norm(Array(x[(i % 3 * 3)..<(i % 3 * 3 + 3)])))
        }
        assertBoundCatches(uncentred, model.raw, "R of uncentred rows")

        // Against the target of labels [0, 1, 0] with K = 2 (+1 same class, -1/(K-1) = -1 otherwise):
        // R - T = [[0, 0, -3/2], [0, 0, 3/2], [-3/2, 3/2, 0]]: mean of squares = 4 * 9/4 / 9 = 1.
        let targetValues: [Double] = [1, -1, 1, -1, 1, -1, 1, -1, 1]
        let target = makeTensor([3, 3], targetValues)
        let loss = Self.lossModel(raw: model.raw, target: targetValues, scale: 1)
        XCTAssertEqual(loss.exact, 1, accuracy: 4 * normaliser, "the hand value")
        assertWithinBound(Double(Similarity.meanSquaredError(raw: f.raw, target: target, grad: nil)), loss, "loss")
        assertWithinBound(Double(Similarity.meanSquaredError(raw: f.raw, target: target, grad: nil, scale: 0.5)),
                          Self.lossModel(raw: model.raw, target: targetValues, scale: 0.5), "loss, scale 0.5")
        // Against 0: (3 * 1 + 2 * 1 + 4 * 1/4) / 9 = 2/3.
        let againstZero = Self.lossModel(raw: model.raw, target: Array(repeating: 0, count: 9), scale: 1)
        XCTAssertEqual(againstZero.exact, 2.0 / 3, accuracy: 4 * normaliser, "the hand value")
        assertWithinBound(Double(Similarity.meanSquaredError(raw: f.raw, target: zeros([3, 3]), grad: nil)), againstZero, "loss against 0")
    }

    func testForwardMatchesReference() {
        var random = TestRandom(seed: 101)
        let x = random.uniform(5 * 4, -2, 3)
        let f = forward(x, rows: 5), model = Self.forwardModel(x, rows: 5)
        XCTAssertNil(RoundingBound.violation(Reference.similarityRaw(x, rows: 5), model.raw.map { Rounded(exact: $0.exact, error: 1e-14) }),
                     "the model's exact values are the reference's")
        assertWithinBound(f.raw.doubles, model.raw, "raw S")
    }

    /// The clamp passes no gradient outside [-1, 1], and the loss sees the clamped values. The
    /// values are exact in binary, so the hand value is exact too.
    func testMeanSquaredErrorClampsAndPassesNoGradientOutsideRange() {
        let raw: [Double] = [1.25, -1.25, 0.5, -0.25, 0.875, -0.75, 2.0, 0.125, -3]
        let target: [Double] = [0.25, 0.375, -0.5, 1, -1, 0.25, -0.5, 0.75, 0.625]
        let scale = 0.75
        let grad = zeros([3, 3])
        let loss = Similarity.meanSquaredError(raw: makeTensor([3, 3], raw), target: makeTensor([3, 3], target), grad: grad, scale: Float(scale))
        let expected = Self.lossModel(raw: Rounded.inputs(raw), target: target, scale: scale)
        XCTAssertEqual(expected.exact, Reference.meanSquaredError(raw: raw, target: target, scale: scale))
        // (clamp(1.25) - 0.25)^2 = 0.5625, not (1.25 - 0.25)^2 = 1: every term by hand.
        let byHand = scale * ([0.5625, 1.890625, 1.0, 1.5625, 3.515625, 1.0, 2.25, 0.390625, 2.640625].reduce(0, +)) / 9
        XCTAssertEqual(expected.exact, byHand)
        assertWithinBound(Double(loss), expected, "loss")
        // Broken variant: the loss of the unclamped values.
        let unclamped = scale * zip(raw, target).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / 9
        assertBoundCatches([unclamped], [expected], "the loss without the clamp")

        for i in [0, 1, 6, 8] { XCTAssertEqual(grad.array[i], 0, "entry \(i) is outside [-1, 1]") }
        let inside = raw.map { $0 >= -1 && $0 <= 1 }
        let expectedGrad = Self.rawGradModel(raw: Rounded.inputs(raw), target: target, scale: scale, inside: inside)
        assertWithinBound(grad.doubles, expectedGrad, "dL/d raw")
        let numeric = numericalGradient(at: raw) { Reference.meanSquaredError(raw: $0, target: target, scale: scale) }
        // A quadratic: no truncation error; nine squares of magnitude < 16.
        FiniteDifference.assertMatches(expectedGrad.map(\.exact), numeric,
                                       bound: FiniteDifference.bound(step: 1e-6, thirdDerivative: 0, terms: 30, absoluteSum: 20), "dL/d raw formula")
    }

    /// Backward of S alone: L = sum(raw S(X) * R) with a fixed non-symmetric R.
    func testBackwardOfSimilarityMatchesFiniteDifferences() {
        var random = TestRandom(seed: 102)
        let (rows, cols) = (5, 4)
        let x = random.uniform(rows * cols, -1, 2), r = random.uniform(rows * rows)
        let f = forward(x, rows: rows)
        let dx = zeros([rows, cols])
        Similarity.backward(rawGrad: makeTensor([rows, rows], r), normalized: f.u, norms: f.norms, inputGrad: dx)
        let model = Self.backwardModel(rawGrad: Rounded.inputs(r), forward: Self.forwardModel(x, rows: rows), rows: rows)
        assertWithinBound(dx.doubles, model, "dS/dX")
        // Broken variant: dU = (dR + dR^T) U / 2, R's entries counted once where S's symmetry
        // makes each count twice.
        let unsymmetrised = Self.backwardModel(rawGrad: Rounded.inputs(r.map { $0 / 2 }), forward: Self.forwardModel(x, rows: rows), rows: rows)
        assertBoundCatches(unsymmetrised.map(\.exact), model, "dS/dX without symmetrising dR")
        let numeric = numericalGradient(at: x) { dot(Reference.similarityRaw($0, rows: rows), r) }
        FiniteDifference.assertMatches(model.map(\.exact), numeric, bound: Self.finiteDifferenceBound(rows: rows, cols: cols), "dS/dX formula")
    }

    /// The full sim loss: centring, normalising, U U^T, clamp, mean squared error, backward.
    /// Each kernel against its model fed with what the kernel before it produced; the composed
    /// formula against finite differences unless `differentiable` is false (a raw entry at the
    /// clamp's kink, where central differences straddle it).
    private func checkSimLossGradient(_ x: [Double], rows: Int, target: [Double], scale: Double, _ what: String,
                                      differentiable: Bool = true) -> Forward {
        let cols = x.count / rows, scale = Double(Float(scale))  // the kernel's scale, exactly
        let f = forward(x, rows: rows), model = Self.forwardModel(x, rows: rows)
        assertWithinBound(f.raw.doubles, model.raw, "\(what): raw")
        let rawGrad = zeros([rows, rows])
        let loss = Similarity.meanSquaredError(raw: f.raw, target: makeTensor([rows, rows], target), grad: rawGrad, scale: Float(scale))
        assertWithinBound(Double(loss), Self.lossModel(raw: model.raw, target: target, scale: scale), "\(what): loss")
        let inside = f.raw.array.map { $0 >= -1 && $0 <= 1 }
        let rawGradModel = Self.rawGradModel(raw: Rounded.inputs(f.raw.doubles), target: target, scale: scale, inside: inside)
        assertWithinBound(rawGrad.doubles, rawGradModel, "\(what): dL/d raw")
        let rawGradCopy = rawGrad.doubles
        let dx = zeros([rows, cols])
        Similarity.backward(rawGrad: rawGrad, normalized: f.u, norms: f.norms, inputGrad: dx)
        assertWithinBound(dx.doubles, Self.backwardModel(rawGrad: Rounded.inputs(rawGradCopy), forward: model, rows: rows), "\(what): dX")
        if differentiable {
            let composed = Self.backwardModel(rawGrad: Self.rawGradModel(raw: model.raw, target: target, scale: scale, inside: inside),
                                              forward: model, rows: rows)
            let numeric = numericalGradient(at: x) { Reference.similarityLoss($0, rows: rows, target: target, scale: scale) }
            FiniteDifference.assertMatches(composed.map(\.exact), numeric, bound: Self.finiteDifferenceBound(rows: rows, cols: cols), "\(what): formula")
        }
        // Wherever the clamp was active the loss passed no gradient to the raw matrix.
        for (i, v) in f.raw.array.enumerated() where v > 1 || v < -1 {
            XCTAssertEqual(rawGradCopy[i], 0, "\(what): raw entry \(i) = \(v) is clamped but has gradient \(rawGradCopy[i])")
        }
        return f
    }

    func testSimLossGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 103)
        let (rows, cols) = (6, 5)
        let x = random.uniform(rows * cols, -1, 1)
        // The target of labels [0, 1, 0, 2, 1, 1] with K = 3: +1 same class, -1/2 otherwise.
        let labels = [0, 1, 0, 2, 1, 1]
        let target = (0..<(rows * rows)).map { labels[$0 / rows] == labels[$0 % rows] ? 1.0 : -0.5 }
        _ = checkSimLossGradient(x, rows: rows, target: target, scale: 0.7, "sim loss")
    }

    /// Duplicate rows make off-diagonal entries hit +1 (and a negated row -1), where rounding can
    /// push the raw value past the clamp. Search a few seeds for a case where it does, so the
    /// clamp's zero gradient is exercised, then check every kernel there.
    func testSimLossGradientWithDuplicateRowsAtTheClamp() {
        let (rows, cols) = (5, 4)
        var clampedCase: [Double]?
        for seed in 0..<200 {
            var random = TestRandom(seed: 200 + UInt64(seed))
            var x = random.uniform(rows * cols, -1, 1)
            for k in 0..<cols {
                x[2 * cols + k] = x[k]                 // row 2 duplicates row 0
                x[4 * cols + k] = -x[1 * cols + k]     // row 4 is row 1 negated: R = -1
            }
            if forward(x, rows: rows).raw.array.contains(where: { $0 > 1 || $0 < -1 }) { clampedCase = x; break }
        }
        guard let x = clampedCase else { return XCTFail("no seed pushed a raw entry past +-1") }
        // Every target entry differs from the raw value, so a leaked gradient would be non-zero.
        let target = (0..<(rows * rows)).map { $0 % 3 == 0 ? -0.5 : 0.25 }
        let f = checkSimLossGradient(x, rows: rows, target: target, scale: 1, "sim loss with duplicate rows", differentiable: false)
        let model = Self.forwardModel(x, rows: rows)
        assertWithinBound(f.raw.doubles, model.raw, "raw at the clamp")
        XCTAssertEqual(model.raw[0 * rows + 2].exact, 1, accuracy: 1e-7, "duplicate rows: R = 1 up to the 1e-8 normaliser")
        XCTAssertEqual(model.raw[1 * rows + 4].exact, -1, accuracy: 1e-7, "negated rows: R = -1 up to the 1e-8 normaliser")
    }
}
