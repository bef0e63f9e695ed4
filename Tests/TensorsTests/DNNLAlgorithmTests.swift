import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

/// oneDNN's Winograd (`ConvEngine.dnnlWinograd`) and bf16 (`ConvEngine.dnnlBF16`) convolutions
/// against Float64, per vgg8b layer shape where they are used (maps of 14x14 and larger): the
/// error of every sampled element of every pass, relative to the sum of |terms| of that element,
/// stays under a bound, and the bound is tight enough that a weight tap left out breaks it.
///
/// - Winograd F(4x4, 3x3) transforms each 6x6 input tile and 3x3 filter with constants up to
///   2^3 and sums in the transformed domain, so its error is not the direct sum's
///   (`RoundingBound.ofSum`). Measured on AVX-512 (jit_wino_4x3): at most 2.2e-7 of the sum of
///   |terms|, rms 3e-8 to 5e-8. The bound is `winogradBound` = 2^-18 (3.8e-6) of it, 17 times
///   the worst seen, and still 57 times below the change one weight tap makes (about 1 / K of
///   it, K <= 4,609).
/// - bf16 rounds each operand to 8 significant bits (unit roundoff 2^-9), so each product is off
///   by at most (1 + 2^-9)^2 - 1 < 2^-8 of its magnitude, and the fp32 accumulation adds
///   `RoundingBound.ofSum`: a proven bound for every element (`bf16Bound`). It is too loose to
///   see one missing tap element by element, so the root mean square of the errors, which for
///   independent roundings is about 2^-9 sqrt(2/3) of the root mean square |terms| scaled by
///   1 / sqrt(K), is also held under 0.5 / K, where a missing tap gives about 1.3 / K. Measured
///   with AMX: worst 1.3e-4 to 5.3e-4 of |terms|, rms 4.3e-5 to 1.5e-4.
final class DNNLAlgorithmTests: XCTestCase {
    /// Winograd's bound, a fraction of the sum of |terms| of the element.
    static let winogradBound = 0x1p-18
    /// bf16's proven bound on one element: products off by < 2^-8 each, then the fp32 sum's.
    static func bf16Bound(terms: Int, absoluteSum: Double, exact: Double) -> Double {
        (0x1p-8 + 0x1p-18) * absoluteSum + RoundingBound.ofSum(terms: terms, absoluteSum: absoluteSum * (1 + 0x1p-8), exact: exact)
    }

    /// vgg8b's shapes on maps of 14x14 and up: the 128->256 block and the 128 and 256 sim heads at
    /// 28x28; the 256->512 block and the 512 sim head at 14x14.
    static let shapes = [
        ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28),
        ConvGeometry(inChannels: 256, outChannels: 256, height: 28, width: 28),
        ConvGeometry(inChannels: 256, outChannels: 512, height: 14, width: 14),
        ConvGeometry(inChannels: 512, outChannels: 512, height: 14, width: 14),
    ]

    typealias Sampled = DNNLConvolutionTests.SampledExact

    /// The three passes' sampled exact values for case `t`, with their sum lengths.
    static func sampled(_ t: ConvKernelTests.Case) -> [(pass: ConvPass, sampled: Sampled, terms: Int)] {
        let g = t.g, k2 = g.kernel * g.kernel
        return [(.forward, DNNLConvolutionTests.sampledForward(t, samples: 200, seed: 90), g.inChannels * k2 + 1),
                (.backwardData, DNNLConvolutionTests.sampledBackwardData(t, samples: 200, seed: 91), g.outChannels * k2),
                (.backwardWeights, DNNLConvolutionTests.sampledBackwardWeights(t, samples: 100, seed: 92), t.batch * g.outSpatial)]
    }

    /// (largest error / sum of |terms|, root mean square error / root mean square sum of |terms|)
    /// of `actual` at the sampled elements, and whether every element is within `bound`.
    static func errors(_ actual: [Double], _ s: Sampled, bound: (Int) -> Double) -> (worst: Double, rms: Double, violation: Int?) {
        var worst = 0.0, squares = 0.0, sums = 0.0, violation: Int?
        for (j, i) in s.index.enumerated() {
            let e = abs(actual[i] - s.exact[j])
            worst = max(worst, e / max(s.absoluteSum[j], .leastNormalMagnitude))
            squares += e * e
            sums += s.absoluteSum[j] * s.absoluteSum[j]
            if violation == nil && !(e <= bound(j)) { violation = s.index[j] }
        }
        return (worst, (squares / max(sums, .leastNormalMagnitude)).squareRoot(), violation)
    }

    static func output(_ run: (y: [Double], dx: [Double], dw: [Double], db: [Double]), _ pass: ConvPass) -> [Double] {
        switch pass {
        case .forward: return run.y
        case .backwardData: return run.dx
        case .backwardWeights: return run.dw
        }
    }

    /// Winograd where oneDNN has it (the implementation says so), each pass of each shape within
    /// `winogradBound`; where it has none (CPUs without AVX-512) the engine falls back to direct,
    /// which must then meet the direct bound.
    func testWinogradPassesMatchFloat64WithinItsBoundPerVGG8bShape() throws {
        for (n, g) in Self.shapes.enumerated() {
            let t = ConvKernelTests.Case(g, batch: 2, seed: UInt64(120 + n))
            let run = DNNLConvolutionTests.passes(t, engine: .dnnlWinograd)
            for (pass, s, terms) in Self.sampled(t) {
                let implementation = try DNNLConvolution(pass, geometry: g, batch: 2, withBias: pass != .backwardData,
                                                         engine: .dnnlWinograd).implementation
                let winograd = implementation.contains("wino")
                let e = Self.errors(Self.output(run, pass), s) { j in
                    winograd ? Self.winogradBound * s.absoluteSum[j]
                             : RoundingBound.ofSum(terms: terms, absoluteSum: s.absoluteSum[j], exact: s.exact[j])
                }
                print("winograd \(g) \(pass.rawValue) [\(implementation)]: worst \(String(format: "%.2e", e.worst)), rms \(String(format: "%.2e", e.rms)) of |terms|")
                XCTAssertNil(e.violation, "\(g) \(pass.rawValue) [\(implementation)]: element \(e.violation ?? -1) outside the bound")
                // A missing tap changes an element by about 1 / terms of its |terms|.
                if winograd { XCTAssertLessThan(Self.winogradBound, 0.1 / Double(terms), "\(g) \(pass.rawValue): the bound would hide a missing tap") }
            }
        }
        // Broken variant: a forward without one weight tap breaks the Winograd bound.
        let g = Self.shapes[0]
        let t = ConvKernelTests.Case(g, batch: 2, seed: 120)
        var missingTap = t
        for o in 0..<g.outChannels { missingTap.w[(o * g.inChannels + 3) * 9 + 4] = 0 }
        let forward = Self.sampled(t)[0].sampled
        let broken = Self.errors(DNNLConvolutionTests.passes(missingTap, engine: .dnnlWinograd).y, forward) { Self.winogradBound * forward.absoluteSum[$0] }
        XCTAssertNotNil(broken.violation, "a forward without one weight tap must break the Winograd bound")
    }

    /// bf16 where the CPU has it: every sampled element within the proven bound, the root mean
    /// square error near bf16's rounding (under 0.5 / K of the sum of |terms|, where a missing tap gives about 1.3 / K), and a missing
    /// tap caught by the same measure.
    func testBF16PassesMatchFloat64WithinTheProvenBoundPerVGG8bShape() throws {
        guard ConvEngine.dnnlBF16.isAvailable else { throw XCTSkip(ComputePrecision.bf16.refusal() ?? "bf16 unavailable") }
        for (n, g) in Self.shapes.enumerated() {
            let t = ConvKernelTests.Case(g, batch: 2, seed: UInt64(130 + n))
            let run = DNNLConvolutionTests.passes(t, engine: .dnnlBF16)
            for (pass, s, terms) in Self.sampled(t) {
                let conv = try DNNLConvolution(pass, geometry: g, batch: 2, withBias: pass != .backwardData, engine: .dnnlBF16)
                XCTAssertEqual(conv.precision, .bf16)
                let e = Self.errors(Self.output(run, pass), s) { j in
                    Self.bf16Bound(terms: terms, absoluteSum: s.absoluteSum[j], exact: s.exact[j])
                }
                print("bf16 \(g) \(pass.rawValue) [\(conv.implementation)]: worst \(String(format: "%.2e", e.worst)), rms \(String(format: "%.2e", e.rms)) of |terms|")
                XCTAssertNil(e.violation, "\(g) \(pass.rawValue): element \(e.violation ?? -1) outside the proven bound")
                XCTAssertLessThan(e.rms, 0.5 / Double(terms), "\(g) \(pass.rawValue): errors larger than bf16 rounding explains")
                XCTAssertGreaterThan(e.rms, 0x1p-14 / Double(terms).squareRoot(), "\(g) \(pass.rawValue): no bf16 rounding seen (did it run in fp32?)")
            }
        }
        let g = Self.shapes[0]
        let t = ConvKernelTests.Case(g, batch: 2, seed: 130)
        var missingTap = t
        for o in 0..<g.outChannels { missingTap.w[(o * g.inChannels + 3) * 9 + 4] = 0 }
        let forward = Self.sampled(t)[0]
        let broken = Self.errors(DNNLConvolutionTests.passes(missingTap, engine: .dnnlBF16).y, forward.sampled) { _ in .infinity }
        XCTAssertGreaterThan(broken.rms, 0.5 / Double(forward.terms), "a forward without one weight tap must break the rms bound")
    }

    /// Below 14x14 both engines run fp32 direct (`ConvEngine.dnnlSettings`), and the first
    /// layer's one input channel stays fp32 under bf16.
    func testSmallMapsAndOneChannelInputsStayFP32Direct() throws {
        for g in [ConvGeometry(inChannels: 512, outChannels: 512, height: 7, width: 7),
                  ConvGeometry(inChannels: 512, outChannels: 512, height: 3, width: 3)] {
            for engine in [ConvEngine.dnnlWinograd, .dnnlBF16] {
                for pass in ConvPass.allCases {
                    let s = engine.dnnlSettings(g, pass)
                    XCTAssertEqual(s.algorithm, .direct, "\(g) \(engine) \(pass)")
                    XCTAssertEqual(s.precision, .fp32, "\(g) \(engine) \(pass)")
                }
            }
        }
        let large = Self.shapes[0]
        XCTAssertEqual(ConvEngine.dnnlWinograd.dnnlSettings(large, .backwardWeights).algorithm, .winograd)
        XCTAssertEqual(ConvEngine.dnnlBF16.dnnlSettings(large, .forward).precision, .bf16)
        XCTAssertEqual(ConvEngine.dnnl.dnnlSettings(large, .forward).algorithm, .direct)
        guard ConvEngine.dnnlBF16.isAvailable else { return }
        // One input channel under bf16: x stays fp32 nchw, so the first layer meets the fp32 bound.
        let first = ConvGeometry(inChannels: 1, outChannels: 16, height: 28, width: 28)
        let t = ConvKernelTests.Case(first, batch: 2, seed: 140)
        let run = DNNLConvolutionTests.passes(t, engine: .dnnlBF16)
        let expected = ConvCheck.expected(t)
        assertWithinBound(run.y, expected.y, "\(first) bf16 engine forward")
        assertWithinBound(run.dw, expected.dw, "\(first) bf16 engine backward-weights")
    }

    /// The workspace of a bf16 convolution holds its bf16 operands in half the bytes of fp32's:
    /// the buffers the reorders fill are sized by oneDNN's descriptors, which the ledger books.
    func testBF16WorkspaceIsSmallerThanFP32s() throws {
        guard ConvEngine.dnnlBF16.isAvailable else { throw XCTSkip(ComputePrecision.bf16.refusal() ?? "bf16 unavailable") }
        let g = Self.shapes[0]
        let fp32 = try DNNLConvolution(.forward, geometry: g, batch: 13, withBias: true, engine: .dnnl)
        let bf16 = try DNNLConvolution(.forward, geometry: g, batch: 13, withBias: true, engine: .dnnlBF16)
        // x and w in bf16 (half), y in fp32: at least a third less than fp32's x + w + y.
        let fp32Operands = 4 * (13 * (g.inChannels * g.inSpatial) + g.outChannels * g.patchSize)
        XCTAssertLessThanOrEqual(bf16.workspaceBytes - bf16.scratchpadBytes + fp32Operands / 2,
                                 fp32.workspaceBytes - fp32.scratchpadBytes + 4096,
                                 "bf16 x and w should take half of fp32's bytes")
    }
}
