import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest
@testable import Training

/// The memory claims of local training in exact bytes (DESIGN.md section 4): the planner's
/// working sets against measured steps, what survives a block, depth sweeps, and a negative
/// control that must break the checks.
final class MemoryProofTests: XCTestCase {
    let losses: [LossKind] = [.pred, .sim, .predsim, .predsimBpf, .simBpf, .predBpf]

    /// One block run alone on a fresh ledger: the highest transient bytes of its local step
    /// equals the planner's W_k. Block 1 receives a hand-off (counted in W_1); block 0 receives
    /// the batch (booked as `input`, not counted in W_0), here of another width.
    func testAnalyticWorkingSetEqualsTheMeasuredPeakOfABlockRunAlone() {
        for loss in losses {
            let spec = ProofModel.spec(loss, layers: 2, inputs: 7)
            let plan = MemoryPlanner.plan(spec, batchSize: ProofModel.batch)
            for (index, inFeatures) in [(0, 7), (1, spec.numHidden)] {
                let ledger = Ledger()
                var rng = Xoshiro256(seed: 9)
                let block = HiddenBlock<LinearMap>(index: index, inFeatures: inFeatures, outFeatures: spec.numHidden, classes: spec.classes,
                                        loss: loss, beta: spec.beta, nonlinearity: spec.nonlinearity, dropout: spec.dropout,
                                        rng: &rng, ledger: ledger)
                block.optimizer = Optimizer(block.localParameters, settings: OptimizerSettings(), ledger: ledger)
                do {
                    let x = Tensor([ProofModel.batch, inFeatures], index == 0 ? .input : .activations, layer: index == 0 ? nil : 0,
                                   label: "block input", ledger: ledger)
                    for i in 0..<x.count { x.pointer[i] = rng.uniform(-1, 1) }
                    let persistent = ledger.current().total - (index == 0 ? 0 : x.byteCount)
                    ledger.resetPeaks()
                    let labels = ProofModel.labels(ProofModel.batch)
                    let handOff = labels.withUnsafeBufferPointer {
                        block.trainLocal(x, labels: $0.baseAddress!, lr: 1e-3, dropoutSeed: 1).handOff
                    }
                    XCTAssertEqual(ledger.peak().total - persistent, plan.layers[index].workingSetBytes, "\(loss) W_\(index)")
                    XCTAssertEqual(ledger.current().total - persistent, (index == 0 ? 0 : x.byteCount) + handOff.byteCount,
                                   "\(loss): only the input and the hand-off are left")
                    XCTAssertEqual(handOff.byteCount, plan.layers[index].handOffBytes)
                }
                XCTAssertEqual(ledger.current().bytes(.activations), 0, "\(loss)")
                XCTAssertEqual(ledger.current().bytes(.gradients), 0, "\(loss)")
            }
        }
    }

    /// Every local loss, through the whole network: W_k per layer, activations <= W_k in every
    /// phase, only the hand-off after each update, nothing left after the step.
    func testLocalStepKeepsEveryClaimForEveryLoss() {
        for loss in losses {
            let (network, images, _) = ProofModel.make(ProofModel.spec(loss, layers: 3))
            // Twice: the first step and a later one book the same bytes.
            for step in 0..<2 {
                let violations = MemoryProof.checkLocalStep(network, images: images, labels: ProofModel.labels(ProofModel.batch), step: step)
                XCTAssertEqual(violations, [], "\(loss) step \(step)")
            }
        }
    }

    /// The ledger's per-phase maxima of activations stay within the largest working set.
    func testPerPhaseActivationBytesStayWithinTheWorkingSet() {
        for loss in losses {
            let spec = ProofModel.spec(loss, layers: 3)
            let (network, images, ledger) = ProofModel.make(spec)
            let plan = MemoryPlanner.plan(spec, batchSize: ProofModel.batch)
            ledger.resetPeaks()
            _ = ProofModel.peak(network, images, steps: 1)
            for phase in [Phase.forward, .localLoss, .backward, .update] {
                XCTAssertLessThanOrEqual(ledger.phasePeak(phase, .activations), plan.largestWorkingSet!, "\(loss) \(phase)")
                XCTAssertGreaterThan(ledger.phasePeak(phase, .activations), 0, "\(loss) \(phase)")
            }
        }
    }

    /// After block k returns (its update done, its input dropped), the only live transient
    /// bytes are its hand-off, B x F floats, exactly.
    func testOnlyTheHandOffSurvivesABlock() {
        let spec = ProofModel.spec(.predsim, layers: 2)
        let (network, images, ledger) = ProofModel.make(spec)
        let persistent = ledger.current()
        var x: Tensor? = images
        let labels = ProofModel.labels(ProofModel.batch)
        for block in network.blocks {
            let r = labels.withUnsafeBufferPointer { block.trainLocal(x!, labels: $0.baseAddress!, lr: 1e-3, dropoutSeed: 3) }
            x = r.handOff
            let now = ledger.current()
            XCTAssertEqual(now.bytes(.activations), ProofModel.batch * ProofModel.hidden * 4, "block \(block.index)")
            XCTAssertEqual(ProofModel.transient.reduce(0) { $0 + now.bytes($1) }, ProofModel.batch * ProofModel.hidden * 4)
            XCTAssertEqual(now.bytes(layer: block.index) - persistent.bytes(layer: block.index), ProofModel.batch * ProofModel.hidden * 4)
        }
        x = nil
        XCTAssertEqual(ledger.current().byCategory, persistent.byCategory, "nothing of the step survives")
        XCTAssertEqual(ledger.current().byLayerSlot, persistent.byLayerSlot)
    }

    /// The planner's whole-ledger peak (and its breakdown) equals the measured one, both modes,
    /// Adam and SGD, several depths.
    func testPlannerPredictsTheLedgerPeakOfBothModes() {
        for loss in losses + [.backprop] {
            for layers in [1, 3] {
                for kind in OptimizerKind.allCases {
                    var settings = OptimizerSettings()
                    settings.kind = kind
                    let spec = ProofModel.spec(loss, layers: layers)
                    let ledger = Ledger(eventCapacity: 0)
                    let network = Network(spec: spec, seed: 3, optimizer: settings, ledger: ledger)
                    let images = Tensor([ProofModel.batch] + spec.inputShape, .input, label: "batch", ledger: ledger)
                    let plan = MemoryPlanner.plan(spec, batchSize: ProofModel.batch, optimizer: settings)
                    XCTAssertEqual(ledger.current().byCategory, plan.persistent.values, "\(loss) \(layers) \(kind): persistent")
                    let peak = ProofModel.peak(network, images)
                    XCTAssertEqual(peak.total, plan.peak, "\(loss) \(layers) \(kind)")
                    XCTAssertEqual(peak.byCategory, plan.peakBreakdown.values, "\(loss) \(layers) \(kind)")
                }
            }
        }
    }

    /// Depth 2, 4, 8: local's transient peak is the same at every depth; backprop's grows by the
    /// same number of bytes for every block added.
    func testDepthSweepLocalPeakIsFlatBackpropGrowsLinearly() {
        func transientPeak(_ loss: LossKind, _ layers: Int) -> Int {
            let spec = ProofModel.spec(loss, layers: layers)
            let (network, images, ledger) = ProofModel.make(spec)
            let persistent = ledger.current().total
            let peak = ProofModel.peak(network, images).total - persistent
            XCTAssertEqual(peak, MemoryPlanner.plan(spec, batchSize: ProofModel.batch).peakTransient, "\(loss) depth \(layers)")
            return peak
        }
        for loss in [LossKind.pred, .predsim] {
            let local = [2, 4, 8].map { transientPeak(loss, $0) }
            XCTAssertEqual(Set(local).count, 1, "\(loss): local transient peak must not depend on depth: \(local)")
        }
        let backprop = [2, 4, 8].map { transientPeak(.backprop, $0) }
        let perBlock = (backprop[1] - backprop[0]) / 2
        XCTAssertGreaterThan(perBlock, 0)
        XCTAssertEqual(backprop[1] - backprop[0], 2 * perBlock, "exact per-block step")
        XCTAssertEqual(backprop[2] - backprop[1], 4 * perBlock, "backprop transient peaks \(backprop) are not linear in depth")
    }

    /// Negative control: blocks that keep their activations after the update must fail the
    /// same checks, proving the checks can fail.
    func testNegativeControlKeepingActivationsFailsTheChecks() {
        let spec = ProofModel.spec(.predsim, layers: 3)
        let (network, images, _) = ProofModel.make(spec)
        for block in network.blocks { block.retainActivationsForTesting = true }
        let violations = MemoryProof.checkLocalStep(network, images: images, labels: ProofModel.labels(ProofModel.batch))
        XCTAssertTrue(violations.contains { $0.contains("measured peak") }, "W_k check did not fail: \(violations)")
        XCTAssertTrue(violations.contains { $0.contains("after its update") }, "hand-off check did not fail: \(violations)")
        XCTAssertTrue(violations.contains { $0.contains("of the step survive") }, "end-of-step check did not fail: \(violations)")
        // The depth sweep fails too: the retained bytes grow with depth.
        func peak(_ layers: Int) -> Int {
            let (network, images, ledger) = ProofModel.make(ProofModel.spec(.predsim, layers: layers))
            for block in network.blocks { block.retainActivationsForTesting = true }
            let persistent = ledger.current().total
            defer { network.blocks.forEach { $0.releaseRetained() } }
            return ProofModel.peak(network, images, steps: 1).total - persistent
        }
        XCTAssertNotEqual(peak(2), peak(8))
        for block in network.blocks { block.releaseRetained() }
    }
}
