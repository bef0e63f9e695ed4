import NumericTestSupport
import Tensors
import XCTest

/// SpatialStdKernel against a rounding model of SpatialStd.swift's computation (`Rounded`): a
/// sum of N terms and a multiplication by 1/N (the mean), N squared deviations summed, a
/// multiplication by 1/(N - 1) and a correctly rounded square root; the backward's division and
/// products. The gradient formula against central differences of the Float64 reference.
final class SpatialStdKernelTests: XCTestCase {
    /// Unbiased std over each (b, c) plane in Float64.
    static func reference(_ x: [Double], planes: Int, n: Int) -> [Double] {
        (0..<planes).map { p in
            let v = x[(p * n)..<((p + 1) * n)]
            let mean = v.reduce(0, +) / Double(n)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        }
    }

    /// Per plane: the mean and the std as the kernel computes them.
    static func model(_ x: [Double], planes: Int, n: Int) -> (mean: [Rounded], std: [Rounded]) {
        let invN = Rounded(exact: 1) / Rounded(exact: Double(n)), invNm1 = Rounded(exact: 1) / Rounded(exact: Double(n - 1))
        var means: [Rounded] = [], stds: [Rounded] = []
        for p in 0..<planes {
            let v = x[(p * n)..<((p + 1) * n)].map { Rounded(exact: $0) }
            let mean = Rounded.sum(v) * invN
            let deviations = v.map { $0 - mean }
            means.append(mean)
            stds.append((Rounded.dot(deviations, deviations) * invNm1).squareRoot())
        }
        return (means, stds)
    }

    /// dx = ds (x - mean) / ((N - 1) s), with s the kernel's own std (`computedStd`, exact
    /// Float32 values) and the mean recomputed.
    static func gradientModel(_ x: [Double], ds: [Double], computedStd: [Double], planes: Int, n: Int) -> [Rounded] {
        let means = model(x, planes: planes, n: n).mean
        return x.indices.map { i in
            let p = i / n
            let scale = Rounded(exact: ds[p]) / (Rounded(exact: Double(n - 1)) * Rounded(exact: computedStd[p]))
            return scale * (Rounded(exact: x[i]) - means[p])
        }
    }

    func testForwardByHand() {
        // One plane 1x4 of [1, 2, 3, 4]: mean 2.5, squared deviations 5, unbiased var 5/3.
        let x = ConvCheck.tensor([1, 1, 1, 4], [1, 2, 3, 4])
        let s = Tensor([1, 1], .activations, label: "s")
        SpatialStdKernel.forward(x: x, into: s)
        let expected = Self.model([1, 2, 3, 4], planes: 1, n: 4).std
        XCTAssertEqual(expected[0].exact, (5.0 / 3).squareRoot(), "the hand value")
        assertWithinBound(ConvCheck.doubles(s), expected, "std of 1, 2, 3, 4")
    }

    func testForwardMatchesReference() {
        for (h, w) in [(5, 7), (1, 2), (3, 3)] {
            var rng = ConvCheck.Random(seed: UInt64(h * 7 + w))
            let xs = rng.uniform(2 * 3 * h * w, -2, 3)
            let s = Tensor([2, 3], .activations, label: "s", zeroed: false)
            s.fill(.nan)
            SpatialStdKernel.forward(x: ConvCheck.tensor([2, 3, h, w], xs), into: s)
            let expected = Self.model(xs, planes: 6, n: h * w).std
            XCTAssertNil(RoundingBound.violation(Self.reference(xs, planes: 6, n: h * w), expected.map { Rounded(exact: $0.exact, error: 1e-14) }))
            assertWithinBound(ConvCheck.doubles(s), expected, "\(h)x\(w)")
            // Broken variant: the biased (1/N) variance.
            if h * w > 2 {
                let biased = Self.reference(xs, planes: 6, n: h * w).map { $0 * (Double(h * w - 1) / Double(h * w)).squareRoot() }
                assertBoundCatches(biased, expected, "\(h)x\(w) std with 1/N")
            }
        }
    }

    /// L = sum(std(x) * R): the kernel against the model, the model's exact gradient against
    /// central differences of the reference (h = 1e-6; |f'''| <= 10 |R| / s^2 for the std of a
    /// plane with std s; one evaluation ~5 N operations per plane on magnitudes < 10).
    func testGradientMatchesFiniteDifferences() {
        for (h, w) in [(5, 7), (1, 2), (3, 3)] {
            var rng = ConvCheck.Random(seed: 100 + UInt64(h * 7 + w))
            let xs = rng.uniform(2 * 3 * h * w, -2, 3)
            let rs = rng.uniform(6)
            let x = ConvCheck.tensor([2, 3, h, w], xs)
            let s = Tensor([2, 3], .activations, label: "s")
            SpatialStdKernel.forward(x: x, into: s)
            let dx = Tensor([2, 3, h, w], .activationGrads, label: "dx", zeroed: false)
            dx.fill(.nan)
            let ds = ConvCheck.tensor([2, 3], rs)
            SpatialStdKernel.backward(ds: ds, x: x, s: s, into: dx)
            let expected = Self.gradientModel(xs, ds: rs, computedStd: ConvCheck.doubles(s), planes: 6, n: h * w)
            assertWithinBound(ConvCheck.doubles(dx), expected, "\(h)x\(w)")

            // The formula on the exact std, against finite differences.
            let exactStd = Self.reference(xs, planes: 6, n: h * w)
            let formula = Self.gradientModel(xs, ds: rs, computedStd: exactStd, planes: 6, n: h * w).map(\.exact)
            let numeric = ConvCheck.numericalGradient(at: xs) { ConvCheck.dot(Self.reference($0, planes: 6, n: h * w), rs) }
            let fd = FiniteDifference.bound(step: 1e-6, thirdDerivative: 10 / pow(exactStd.min()!, 2), terms: 5 * xs.count, absoluteSum: 10 * 6)
            FiniteDifference.assertMatches(formula, numeric, bound: fd, "\(h)x\(w) formula")

            SpatialStdKernel.backward(ds: ds, x: x, s: s, into: dx, accumulate: true)
            assertWithinBound(ConvCheck.doubles(dx), expected.map { $0 + $0 }, "\(h)x\(w) accumulated")
        }
    }

    func testConstantChannelHasZeroStdAndZeroGradient() {
        let x = ConvCheck.tensor([1, 2, 2, 2], [3, 3, 3, 3, 1, 2, 3, 4])
        let s = Tensor([1, 2], .activations, label: "s")
        SpatialStdKernel.forward(x: x, into: s)
        XCTAssertEqual(s.array[0], 0)
        let dx = Tensor([1, 2, 2, 2], .activationGrads, label: "dx")
        SpatialStdKernel.backward(ds: ConvCheck.tensor([1, 2], [1, 1]), x: x, s: s, into: dx)
        XCTAssertEqual(Array(dx.array[0..<4]), [0, 0, 0, 0])
        XCTAssertTrue(dx.array.allSatisfy(\.isFinite))
        XCTAssertNotEqual(dx.array[4], 0)
    }
}
