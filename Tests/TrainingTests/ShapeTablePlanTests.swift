import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest
@testable import Training

/// The planner's prediction, from the shape table alone, against the ledger of real steps: the
/// peak byte for byte and its breakdown by category, for the mlp and reduced-width conv nets,
/// every loss, whole batches and chunks, both conv engines.
final class ShapeTablePlanTests: XCTestCase {
    static let batch = 8

    /// vgg8b / vgg11b at reduced widths on 16x16 inputs: every path of the step program runs
    /// (pooling and non-pooling blocks, pred heads that pool, sim heads with and without the
    /// spatial std, a first block cheap enough to recompute in chunked steps).
    static func convSpec(_ kind: ModelSpec.Kind, _ loss: LossKind, featMult: Float = 0.125) -> ModelSpec {
        var s = ModelSpec()
        s.kind = kind
        s.inputShape = [1, 16, 16]
        s.classes = 4
        s.numHidden = 24
        s.featMult = featMult
        s.dimInDecoder = 256
        s.loss = loss
        s.beta = loss.defaultBeta
        s.dropout = 0.1
        s.nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity)!
        return s
    }

    /// Two steps on a fresh ledger (the first makes oneDNN's primitives); the ledger's peak.
    static func measure(_ spec: ModelSpec, chunk: Int?, engine: ConvEngine, batch: Int = batch,
                        optimizer: OptimizerSettings = OptimizerSettings(), keepSim: Bool = false) -> LedgerSnapshot {
        let ledger = Ledger(eventCapacity: 1 << 10)
        let network = Network(spec: spec, seed: 5, optimizer: optimizer, ledger: ledger, engine: engine)
        network.chunkSize = chunk
        network.keepsSimOutput = keepSim
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: 9)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        return ProofModel.peak(network, images)
    }

    @discardableResult
    func check(_ spec: ModelSpec, batch: Int = batch, chunk: Int?, engine: ConvEngine, optimizer: OptimizerSettings = OptimizerSettings(),
               keepSim: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> MemoryPlan {
        var table = ShapeTable(spec: spec, engine: engine)
        table.keepsSimOutput = keepSim
        let plan = MemoryPlanner.plan(table, batchSize: batch, chunk: chunk, optimizer: optimizer)
        let measured = Self.measure(spec, chunk: chunk, engine: engine, batch: batch, optimizer: optimizer, keepSim: keepSim)
        let what = "\(spec.kind.rawValue) x\(spec.featMult) \(spec.loss.rawValue) batch \(batch) chunk \(chunk.map(String.init) ?? "none") \(engine.rawValue) \(optimizer.kind.rawValue) \(optimizer.stateFormat.rawValue)\(keepSim ? " sim output kept" : "")"
        XCTAssertEqual(plan.peak, measured.total, "\(what): predicted peak vs ledger", file: file, line: line)
        for c in Category.allCases {
            XCTAssertEqual(plan.peakBreakdown[c], measured.bytes(c), "\(what): \(c) at the peak", file: file, line: line)
        }
        return plan
    }

    /// Sim heads that keep their output (`--sim-output keep`): predicted byte for byte under
    /// every engine, whole batches (a batch of 20: the std's chunks of 16 and 4 write into one
    /// kept s) and chunked steps (which recompute anyway: the same peak as without it); a kept
    /// s raises the peak of a net whose largest working set is a sim head's.
    func testPlannerPredictsPeaksWithKeptSimOutput() {
        for engine in [ConvEngine.im2col, .dnnl] {
            for loss in [LossKind.predsim, .sim] {
                let spec = Self.convSpec(.vgg8b, loss, featMult: 1.0 / 16)
                let kept = check(spec, batch: 20, chunk: nil, engine: engine, keepSim: true)
                let recomputed = check(spec, batch: 20, chunk: nil, engine: engine)
                XCTAssertGreaterThan(kept.peak, recomputed.peak, "\(loss) \(engine)")
                let chunkedKept = check(spec, batch: 20, chunk: 6, engine: engine, keepSim: true)
                XCTAssertEqual(chunkedKept.peak, check(spec, batch: 20, chunk: 6, engine: engine).peak)
            }
            check(Self.convSpec(.vgg8b, .predBpf), chunk: nil, engine: engine, keepSim: true)  // no learned sim head
        }
    }

    func testPlannerPredictsTheMLPPeakInEveryModeWholeAndChunked() {
        for loss in LossKind.allCases {
            let spec = ProofModel.spec(loss)
            check(spec, chunk: nil, engine: .im2col)
            if loss.isLocal { check(spec, chunk: 3, engine: .im2col) }
        }
    }

    /// Every optimizer state format, Adam and SGD: the state booked at its real size (8-bit codes
    /// and a scale per block of each tensor, bf16 halves) is what the planner predicts.
    func testPlannerPredictsThePeakWithEveryOptimizerStateFormat() {
        for format in OptimizerStateFormat.allCases {
            for kind in OptimizerKind.allCases {
                var optimizer = OptimizerSettings()
                optimizer.kind = kind
                optimizer.stateFormat = format
                for loss in [LossKind.predsim, .predBpf, .backprop] {
                    check(ProofModel.spec(loss), chunk: nil, engine: .im2col, optimizer: optimizer)
                    check(Self.convSpec(.vgg8b, loss), chunk: loss.isLocal ? 3 : nil, engine: .dnnl, optimizer: optimizer)
                }
            }
        }
    }

    func testPlannerPredictsVGG8bPeaksUnderBothEngines() {
        for engine in [ConvEngine.im2col, .dnnl] {
            for loss in LossKind.allCases {
                let spec = Self.convSpec(.vgg8b, loss)
                check(spec, chunk: nil, engine: engine)
                if loss.isLocal { check(spec, chunk: 3, engine: engine) }
            }
        }
    }

    func testPlannerPredictsNarrowVGG8bAndVGG11bPeaks() {
        // 1/64 of the widths: two channels in the first block (its sim head flattens, no std).
        for engine in [ConvEngine.im2col, .dnnl] {
            for loss in [LossKind.predsim, .simBpf, .backprop] {
                check(Self.convSpec(.vgg8b, loss, featMult: 1.0 / 64), chunk: nil, engine: engine)
                check(Self.convSpec(.vgg11b, loss, featMult: 1.0 / 32), chunk: nil, engine: engine)
                if loss.isLocal { check(Self.convSpec(.vgg11b, loss, featMult: 1.0 / 32), chunk: 5, engine: engine) }
            }
            // 20 images: the sim head's std runs in chunks of 16 and 4; chunked steps of 6, 6, 6, 2.
            check(Self.convSpec(.vgg8b, .predsim, featMult: 1.0 / 16), batch: 20, chunk: nil, engine: engine)
            check(Self.convSpec(.vgg8b, .predsim, featMult: 1.0 / 16), batch: 20, chunk: 6, engine: engine)
        }
    }

    /// oneDNN's Winograd and bf16 engines: vgg8b x0.125 on 16x16 runs its first two blocks and
    /// their sim heads (16 and 32 channels, 256 positions) with Winograd or in bf16, the rest
    /// direct fp32, and the planner prices their scratch and bf16 buffers to the byte: local and
    /// backprop, whole batches (s kept or recomputed) and chunks. bf16 where the CPU has it.
    func testPlannerPredictsVGG8bPeaksUnderOneDNNWinogradAndBF16() throws {
        let engines = [ConvEngine.dnnlWinograd, .dnnlBF16].filter(\.isAvailable)
        for engine in engines {
            for loss in [LossKind.predsim, .backprop] {
                let spec = Self.convSpec(.vgg8b, loss)
                check(spec, chunk: nil, engine: engine)
                if loss.isLocal {
                    check(spec, chunk: 3, engine: engine)
                    check(spec, chunk: nil, engine: engine, keepSim: true)
                }
            }
        }
        var bf16 = Self.convSpec(.vgg8b, .predsim)
        bf16.precision = .bf16
        XCTAssertEqual(ShapeTable(spec: bf16, engine: .dnnl).engine, .dnnlBF16, "a bf16 spec plans the bf16 engine")
        if engines.count < 2 { throw XCTSkip("bf16 is refused here: \(ComputePrecision.bf16.refusal() ?? "")") }
    }

    /// The Winograd engine's scratch (its U, V, M and plane, one allocation for every conv it
    /// computes) and oneDNN's for the rest: vgg8b x0.125 on 16x16 runs Winograd at blocks 1-3 and
    /// their sim heads (>= 16 channels, >= 7x7), oneDNN at the 1-channel first conv and the 4x4
    /// and 2x2 ones; whole and chunked local steps, backprop.
    func testPlannerPredictsVGG8bPeaksUnderTheWinogradEngine() {
        WinogradConvolution.policy = .everyEligiblePass  // the measured policy picks nothing this narrow
        defer { WinogradConvolution.policy = .measured }
        let spec = Self.convSpec(.vgg8b, .predsim)
        XCTAssertTrue(ShapeTable(spec: spec, engine: .winograd).convGeometries.contains { ConvEngine.winograd.usesWinograd($0, .forward) })
        check(spec, chunk: nil, engine: .winograd)
        check(spec, chunk: 3, engine: .winograd)
        check(Self.convSpec(.vgg8b, .backprop), chunk: nil, engine: .winograd)
    }

    func testTableMatchesTheNetworkItBuilds() {
        for spec in [ProofModel.spec(.predsim), Self.convSpec(.vgg8b, .predsim), Self.convSpec(.vgg11b, .predBpf)] {
            let ledger = Ledger()
            let network = Network(spec: spec, seed: 1, ledger: ledger)
            let table = network.table
            XCTAssertEqual(table.parameterCount, spec.parameterCount)
            XCTAssertEqual(table.headParameterCount, spec.headParameterCount)
            let trained = network.allParameters.reduce(0) { $0 + $1.count }
            XCTAssertEqual(trained, table.parameterCount + table.headParameterCount, "\(spec.kind)")
            XCTAssertEqual(table.layers.count, network.hiddenBlockCount + 1)
        }
    }
}
