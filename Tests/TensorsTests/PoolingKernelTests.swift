import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// Max pooling selects inputs and routes dy: no rounding at all, so its results are compared
/// exactly. Average pooling sums at most kh kw inputs and multiplies by the Float32 1/(kh kw):
/// compared with a rounding model (`Rounded`). Gradients of these piecewise-linear maps are
/// checked against central differences in the finite-difference metric (no truncation error
/// away from ties; cancellation only, `FiniteDifference.bound`).
final class PoolingKernelTests: XCTestCase {
    // MARK: references (Float64)

    /// Max pooling 2x2 stride 2, floor mode, first maximum wins.
    static func referenceMaxPool(_ x: [Double], batch: Int, channels: Int, height: Int, width: Int) -> [Double] {
        let oh = height / 2, ow = width / 2
        var y = [Double](repeating: 0, count: batch * channels * oh * ow)
        for p in 0..<(batch * channels) {
            for r in 0..<oh {
                for s in 0..<ow {
                    var best = -Double.infinity
                    for i in 0..<2 { for j in 0..<2 { best = max(best, x[(p * height + 2 * r + i) * width + 2 * s + j]) } }
                    y[(p * oh + r) * ow + s] = best
                }
            }
        }
        return y
    }

    /// Average pooling written from PyTorch's definition: the padded input (zeros around it),
    /// windows of kh x kw at stride (kh, kw), every sum divided by kh kw.
    static func referenceAvgPool(_ x: [Double], batch: Int, _ g: AvgPoolGeometry) -> [Double] {
        let ph = g.height + 2 * g.padHeight, pw = g.width + 2 * g.padWidth
        let oh = (ph - g.kernelHeight) / g.kernelHeight + 1, ow = (pw - g.kernelWidth) / g.kernelWidth + 1
        var y: [Double] = []
        for p in 0..<(batch * g.channels) {
            var padded = [Double](repeating: 0, count: ph * pw)
            for i in 0..<g.height { for j in 0..<g.width {
                padded[(i + g.padHeight) * pw + j + g.padWidth] = x[(p * g.height + i) * g.width + j]
            } }
            for r in 0..<oh {
                for s in 0..<ow {
                    var sum = 0.0
                    for i in 0..<g.kernelHeight { for j in 0..<g.kernelWidth {
                        sum += padded[(r * g.kernelHeight + i) * pw + s * g.kernelWidth + j]
                    } }
                    y.append(sum / Double(g.kernelHeight * g.kernelWidth))
                }
            }
        }
        return y
    }

    /// AvgPoolKernel.forward as a rounding model: each window's sum (at most kh kw terms; the
    /// padding's zeros add nothing) times the Float32 1 / (kh kw).
    static func avgPoolModel(_ x: [Double], batch: Int, _ g: AvgPoolGeometry) -> [Rounded] {
        let scale = Rounded(exact: 1) / Rounded(exact: Double(g.kernelHeight * g.kernelWidth))
        var y: [Rounded] = []
        for p in 0..<(batch * g.channels) {
            for r in 0..<g.outHeight {
                for s in 0..<g.outWidth {
                    var window: [Rounded] = []
                    for i in 0..<g.kernelHeight { for j in 0..<g.kernelWidth {
                        let ih = r * g.kernelHeight + i - g.padHeight, iw = s * g.kernelWidth + j - g.padWidth
                        if ih >= 0, ih < g.height, iw >= 0, iw < g.width { window.append(Rounded(exact: x[(p * g.height + ih) * g.width + iw])) }
                    } }
                    y.append(Rounded.sum(window) * scale)
                }
            }
        }
        return y
    }

    /// Distinct values spaced at least `gap` apart within every 2x2 window, so a finite
    /// difference step smaller than gap / 2 never changes which input is the maximum.
    static func valuesAwayFromTies(_ n: Int, seed: UInt64, gap: Double = 0.01) -> [Double] {
        var rng = ConvCheck.Random(seed: seed)
        // A random permutation of a grid of well-separated levels.
        var levels = (0..<n).map { Double(Float(Double($0) * gap - Double(n) * gap / 2)) }
        for i in stride(from: n - 1, to: 0, by: -1) { levels.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return levels
    }

    // MARK: max pooling

    func testMaxPoolForwardOddSizes() {
        for (h, w) in [(4, 6), (7, 5), (3, 3), (1, 2)] {
            let shape = [2, 3, h, w], n = 2 * 3 * h * w
            var rng = ConvCheck.Random(seed: UInt64(h * 10 + w))
            let xs = rng.uniform(n)
            let x = ConvCheck.tensor(shape, xs)
            let y = Tensor(MaxPoolKernel.outputShape(shape), .activations, label: "y", zeroed: false)
            y.fill(.nan)
            MaxPoolKernel.forward(x: x, into: y)
            XCTAssertEqual(y.shape, [2, 3, h / 2, w / 2])
            XCTAssertEqual(ConvCheck.doubles(y), Self.referenceMaxPool(xs, batch: 2, channels: 3, height: h, width: w), "\(h)x\(w)")
        }
    }

    func testMaxPoolTiesGoToTheFirstMaximum() {
        let x = ConvCheck.tensor([1, 1, 2, 4], [1, 1, 0, 5,
                                               1, 0, 5, 5])
        let y = Tensor([1, 1, 1, 2], .activations, label: "y")
        let argmax = MaxPoolKernel.makeArgmax(for: y)
        MaxPoolKernel.forward(x: x, into: y, argmax: argmax)
        XCTAssertEqual(y.array, [1, 5])
        XCTAssertEqual(Array(argmax.buffer), [0, 1])
        let dy = ConvCheck.tensor([1, 1, 1, 2], [2, 3])
        let dx = Tensor([1, 1, 2, 4], .activationGrads, label: "dx")
        MaxPoolKernel.backward(dy: dy, x: x, into: dx)
        XCTAssertEqual(dx.array, [2, 0, 0, 3,
                                  0, 0, 0, 0])
    }

    /// L = sum(maxpool(x) * R), inputs at least 0.01 apart: both backwards (saved argmax and
    /// recomputed) against central differences of the reference; odd sizes leave the last row
    /// and column without gradient.
    func testMaxPoolGradientsMatchFiniteDifferences() {
        for (h, w) in [(4, 6), (7, 5)] {
            let shape = [2, 3, h, w], n = 2 * 3 * h * w
            let xs = Self.valuesAwayFromTies(n, seed: UInt64(h + w))
            let outShape = MaxPoolKernel.outputShape(shape)
            var rng = ConvCheck.Random(seed: 99)
            let rs = rng.uniform(outShape.reduce(1, *))
            let x = ConvCheck.tensor(shape, xs)
            let y = Tensor(outShape, .activations, label: "y")
            let argmax = MaxPoolKernel.makeArgmax(for: y)
            MaxPoolKernel.forward(x: x, into: y, argmax: argmax)
            let dy = ConvCheck.tensor(outShape, rs)
            let saved = Tensor(shape, .activationGrads, label: "dx", zeroed: false)
            saved.fill(.nan)
            MaxPoolKernel.backward(dy: dy, argmax: argmax, into: saved)
            let recomputed = Tensor(shape, .activationGrads, label: "dx", zeroed: false)
            recomputed.fill(.nan)
            MaxPoolKernel.backward(dy: dy, x: x, into: recomputed)
            let numeric = ConvCheck.numericalGradient(at: xs, step: 1e-3) {
                ConvCheck.dot(Self.referenceMaxPool($0, batch: 2, channels: 3, height: h, width: w), rs)
            }
            // Linear between ties (step 1e-3 < gap / 2): no truncation error; one evaluation sums
            // the B C H' W' products |y r| < 1.
            let fd = FiniteDifference.bound(step: 1e-3, thirdDerivative: 0, terms: rs.count, absoluteSum: Double(rs.count))
            FiniteDifference.assertMatches(ConvCheck.doubles(saved), numeric, bound: fd, "\(h)x\(w) saved argmax")
            FiniteDifference.assertMatches(ConvCheck.doubles(recomputed), numeric, bound: fd, "\(h)x\(w) recomputed argmax")
            XCTAssertEqual(saved.array, recomputed.array)
            // Broken variant: dy routed to the window's first element instead of its maximum.
            var firstOfWindow = [Double](repeating: 0, count: n)
            for (o, v) in rs.enumerated() {
                let (plane, r, c) = (o / (outShape[2] * outShape[3]), o / outShape[3] % outShape[2], o % outShape[3])
                firstOfWindow[(plane * h + 2 * r) * w + 2 * c] = v
            }
            XCTAssertNotNil(gradientMismatch(analytic: firstOfWindow, numeric: numeric, relativeTolerance: 0, absoluteTolerance: fd),
                            "\(h)x\(w): dy routed to the wrong element passes")
            // accumulate adds onto what dx holds: dy + dy, exact.
            let once = saved.array
            MaxPoolKernel.backward(dy: dy, argmax: argmax, into: saved, accumulate: true)
            XCTAssertEqual(saved.array, once.map { 2 * $0 }, "accumulated")
        }
    }

    func testMaxPoolArgmaxIsOneBytePerOutputBookedAsActivations() {
        let ledger = Ledger()
        let y = Tensor([2, 4, 3, 3], .activations, label: "y", ledger: ledger)
        let before = ledger.current().bytes(.activations)
        let argmax = MaxPoolKernel.makeArgmax(for: y, layer: 1, ledger: ledger)
        XCTAssertEqual(ledger.current().bytes(.activations) - before, 72)
        XCTAssertEqual(argmax.byteCount, y.count)
    }

    // MARK: average pooling

    static let avgGeometries = [
        AvgPoolGeometry(channels: 3, height: 4, width: 6, kernelHeight: 2, kernelWidth: 2),
        AvgPoolGeometry(channels: 2, height: 7, width: 5, kernelHeight: 4, kernelWidth: 2, padHeight: 2, padWidth: 1),
        AvgPoolGeometry(channels: 2, height: 7, width: 5, kernelHeight: 3, kernelWidth: 2),  // floor mode drops edges
        AvgPoolGeometry(channels: 2, height: 3, width: 3, kernelHeight: 4, kernelWidth: 2, padHeight: 2, padWidth: 1),
        AvgPoolGeometry(channels: 1, height: 5, width: 5, kernelHeight: 1, kernelWidth: 1),  // identity
    ]

    func testAvgPoolForwardMatchesPaddedDefinition() {
        for (n, g) in Self.avgGeometries.enumerated() {
            var rng = ConvCheck.Random(seed: 40 + UInt64(n))
            let xs = rng.uniform(2 * g.channels * g.height * g.width)
            let y = Tensor(g.outputShape(batch: 2), .activations, label: "y", zeroed: false)
            y.fill(.nan)
            AvgPoolKernel.forward(x: ConvCheck.tensor(g.inputShape(batch: 2), xs), into: y, geometry: g)
            let expected = Self.avgPoolModel(xs, batch: 2, g)
            XCTAssertEqual(expected.count, y.count, "\(g): output size")
            XCTAssertNil(RoundingBound.violation(Self.referenceAvgPool(xs, batch: 2, g), expected.map { Rounded(exact: $0.exact, error: 1e-15) }))
            assertWithinBound(ConvCheck.doubles(y), expected, "\(g)")
            // Broken variant: the divisor counting only the positions inside the image.
            if g.padHeight > 0 {
                let insideOnly = Self.referenceAvgPool(xs, batch: 2, g).enumerated().map { i, v -> Double in
                    let r = i / g.outWidth % g.outHeight, c = i % g.outWidth
                    let rows = min(g.height, (r + 1) * g.kernelHeight - g.padHeight) - max(0, r * g.kernelHeight - g.padHeight)
                    let cols = min(g.width, (c + 1) * g.kernelWidth - g.padWidth) - max(0, c * g.kernelWidth - g.padWidth)
                    return v * Double(g.kernelHeight * g.kernelWidth) / Double(rows * cols)
                }
                assertBoundCatches(insideOnly, expected, "\(g) average over the inside positions only")
            }
        }
    }

    /// 7x5 with kernel 4x2 and padding 2x1 by hand: the divisor stays 8 at the borders.
    func testAvgPoolCountsPaddingInTheDivisor() {
        let g = AvgPoolGeometry(channels: 1, height: 7, width: 5, kernelHeight: 4, kernelWidth: 2, padHeight: 2, padWidth: 1)
        XCTAssertEqual([g.outHeight, g.outWidth], [2, 3])
        let y = Tensor(g.outputShape(batch: 1), .activations, label: "y")
        AvgPoolKernel.forward(x: ConvCheck.tensor([1, 1, 7, 5], Array(repeating: 1, count: 35)), into: y, geometry: g)
        // Window (0, 0) covers rows -2..1 and columns -1..0: 2 x 1 ones of 8 positions.
        // Window (1, 1) covers rows 2..5 and columns 1..2: all 8 inside.
        let expected: [Float] = [2, 4, 4,
                                 4, 8, 8]
        XCTAssertEqual(y.array, expected.map { $0 / 8 })
    }

    func testAvgPoolGradientsMatchFiniteDifferences() {
        for (n, g) in Self.avgGeometries.enumerated() {
            var rng = ConvCheck.Random(seed: 60 + UInt64(n))
            let xs = rng.uniform(2 * g.channels * g.height * g.width)
            let rs = rng.uniform(2 * g.outputFeatures)
            let dx = Tensor(g.inputShape(batch: 2), .activationGrads, label: "dx", zeroed: false)
            dx.fill(.nan)
            AvgPoolKernel.backward(dy: ConvCheck.tensor(g.outputShape(batch: 2), rs), into: dx, geometry: g)
            // dx = dy * (1 / (kh kw)) inside a window, 0 outside every window.
            let scale = Rounded(exact: 1) / Rounded(exact: Double(g.kernelHeight * g.kernelWidth))
            var expected = [Rounded](repeating: Rounded(exact: 0), count: xs.count)
            for p in 0..<(2 * g.channels) { for r in 0..<g.outHeight { for s in 0..<g.outWidth {
                for i in 0..<g.kernelHeight { for j in 0..<g.kernelWidth {
                    let ih = r * g.kernelHeight + i - g.padHeight, iw = s * g.kernelWidth + j - g.padWidth
                    if ih >= 0, ih < g.height, iw >= 0, iw < g.width {
                        expected[(p * g.height + ih) * g.width + iw] = Rounded(exact: rs[(p * g.outHeight + r) * g.outWidth + s]) * scale
                    }
                } }
            } } }
            assertWithinBound(ConvCheck.doubles(dx), expected, "\(g)")
            // The formula against central differences: linear, so cancellation only.
            let numeric = ConvCheck.numericalGradient(at: xs) { ConvCheck.dot(Self.referenceAvgPool($0, batch: 2, g), rs) }
            FiniteDifference.assertMatches(expected.map(\.exact), numeric,
                                           bound: FiniteDifference.bound(step: 1e-6, thirdDerivative: 0, terms: xs.count + rs.count, absoluteSum: Double(rs.count)),
                                           "\(g) formula")
            AvgPoolKernel.backward(dy: ConvCheck.tensor(g.outputShape(batch: 2), rs), into: dx, geometry: g, accumulate: true)
            assertWithinBound(ConvCheck.doubles(dx), expected.map { $0 + $0 }, "\(g) accumulated")
        }
    }

    // MARK: the pred head's pooling plan

    /// DESIGN.md's worked examples for vgg8b on 28x28 with dim_in_decoder 1024.
    func testPredHeadPoolingVgg8bFirstLayerIs16x8Padding8x4() {
        let plan = PredHeadPooling(channels: 128, height: 28, width: 28, dimInDecoder: 1024)
        XCTAssertEqual([plan.kernelHeight, plan.kernelWidth], [16, 8])
        XCTAssertEqual([plan.padHeight, plan.padWidth], [8, 4])
        XCTAssertEqual([plan.outHeight, plan.outWidth], [2, 4])
        XCTAssertEqual(plan.features, 1024)
        XCTAssertEqual([plan.geometry.outHeight, plan.geometry.outWidth], [2, 4])
    }

    func testPredHeadPoolingVgg8bLastConvIs4x2() {
        let plan = PredHeadPooling(channels: 512, height: 3, width: 3, dimInDecoder: 1024)
        XCTAssertEqual([plan.kernelHeight, plan.kernelWidth], [4, 2])
        XCTAssertEqual([plan.padHeight, plan.padWidth], [2, 1])
        XCTAssertEqual([plan.outHeight, plan.outWidth], [1, 2])
        XCTAssertEqual(plan.features, 1024)
        XCTAssertEqual([plan.geometry.outHeight, plan.geometry.outWidth], [1, 2])
    }

    /// Every vgg8b / vgg11b block shape on 28x28 (and 32x32), and feature multipliers: the pooled
    /// size the avg pooling produces equals the reference's ceil prediction, and fits the
    /// decoder unless the kernel has reached the map's height.
    func testPredHeadPoolingPooledSizeMatchesPrediction() {
        for size in [28, 14, 7, 3, 1, 32, 16, 8, 4, 2] {
            for channels in [64, 128, 256, 512, 1024] {
                for dim in [512, 1024, 2048] {
                    let plan = PredHeadPooling(channels: channels, height: size, width: size, dimInDecoder: dim)
                    let g = plan.geometry
                    XCTAssertEqual([g.outHeight, g.outWidth], [plan.outHeight, plan.outWidth], "\(plan)")
                    XCTAssertTrue(plan.features <= dim || plan.kernelHeight >= size, "\(plan)")
                }
            }
        }
        let small = PredHeadPooling(channels: 16, height: 4, width: 4, dimInDecoder: 1024)
        XCTAssertFalse(small.pools)
        XCTAssertEqual(small.features, 256)
    }
}
