import Tensors
import XCTest

final class SpatialStdKernelTests: XCTestCase {
    /// Unbiased std over each (b, c) plane in Float64.
    static func reference(_ x: [Double], planes: Int, n: Int) -> [Double] {
        (0..<planes).map { p in
            let v = x[(p * n)..<((p + 1) * n)]
            let mean = v.reduce(0, +) / Double(n)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        }
    }

    func testForwardByHand() {
        // One plane 1x4 of [1, 2, 3, 4]: mean 2.5, squared deviations 5, unbiased var 5/3.
        let x = ConvCheck.tensor([1, 1, 1, 4], [1, 2, 3, 4])
        let s = Tensor([1, 1], .activations, label: "s")
        SpatialStdKernel.forward(x: x, into: s)
        XCTAssertEqual(Double(s.array[0]), (5.0 / 3).squareRoot(), accuracy: 1e-6)
    }

    func testForwardMatchesReference() {
        for (h, w) in [(5, 7), (1, 2), (3, 3)] {
            var rng = ConvCheck.Random(seed: UInt64(h * 7 + w))
            let xs = rng.uniform(2 * 3 * h * w, -2, 3)
            let s = Tensor([2, 3], .activations, label: "s", zeroed: false)
            s.fill(.nan)
            SpatialStdKernel.forward(x: ConvCheck.tensor([2, 3, h, w], xs), into: s)
            ConvCheck.assertClose(ConvCheck.doubles(s), Self.reference(xs, planes: 6, n: h * w), tolerance: 1e-5, "\(h)x\(w)")
        }
    }

    /// L = sum(std(x) * R) against central differences of the reference, and `accumulate`.
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
            let numeric = ConvCheck.numericalGradient(at: xs) { ConvCheck.dot(Self.reference($0, planes: 6, n: h * w), rs) }
            ConvCheck.assertGradient(ConvCheck.doubles(dx), numeric, "\(h)x\(w)", tolerance: 2e-4)
            SpatialStdKernel.backward(ds: ds, x: x, s: s, into: dx, accumulate: true)
            ConvCheck.assertClose(ConvCheck.doubles(dx), numeric.map { 2 * $0 }, tolerance: 1e-4, "\(h)x\(w) accumulated")
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
