import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// The local heads' losses and what LocalHeads.apply accumulates into dh, against finite
/// differences of Float64 references of each head's loss.
final class LocalHeadsTests: XCTestCase {
    let batch = 6, features = 5, classes = 3
    let labels: [Int32] = [0, 1, 0, 2, 1, 2]

    /// Bounds (`BlockStepBound`): the heads' results against the exact gradients within the
    /// rounding of the heads' sums (the longest the similarity's B^2 mean, or the -bpf decoder's
    /// 128 outputs) relative to the largest entry, plus the finite-difference metric; reported
    /// losses within the forward's sums.
    private func gradientBound(_ longestSum: Int) -> Double { BlockStepBound.heads(longestSum: longestSum) }
    private func fd(_ longestSum: Int) -> Double { BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: longestSum) }
    private func lossBound(_ longestSum: Int, _ loss: Double) -> Double { BlockStepBound.loss(longestSum: longestSum) * max(1, abs(loss)) }

    /// Heads with non-zero pred and decoder weights (they start at zero, which would make the
    /// gradient to h vanish and every check on it vacuous).
    private func makeHeads(_ loss: LossKind, seed: UInt64) -> LocalHeads<LinearMap> {
        var rng = Xoshiro256(seed: seed)
        let heads = LocalHeads<LinearMap>(loss: loss, features: features, classes: classes, layer: 0, rng: &rng, ledger: .shared)
        var random = TestRandom(seed: seed &+ 1000)
        if let w = heads.predWeight { w.value.copy(from: random.uniform(w.count).map { Float($0) }) }
        if let w = heads.decoderWeight { w.value.copy(from: random.uniform(w.count).map { Float($0) }) }
        return heads
    }

    private struct Applied {
        var dh: [Double]
        var pred: HeadResult
        var sim: HeadResult
    }

    /// Runs apply on h with dh pre-filled with dh0 and returns what it added to dh.
    private func apply(_ heads: LocalHeads<LinearMap>, h: [Double], dh0: [Double], beta: Float) -> Applied {
        for p in heads.parameters { p.dropGrad() }
        let dh = makeTensor([batch, features], dh0)
        let (pred, sim) = labels.withUnsafeBufferPointer {
            heads.apply(h: makeTensor([batch, features], h), labels: $0.baseAddress!, dh: dh, beta: beta)
        }
        return Applied(dh: subtract(dh.doubles, dh0), pred: pred, sim: sim)
    }

    /// (1 - beta) CE(pred head) + beta L_sim, with each head's weights as they are now.
    private func referenceLoss(_ heads: LocalHeads<LinearMap>, beta: Float) -> (pred: ([Double], [Double], [Double]) -> Double,
                                                                 sim: ([Double], [Double]) -> Double) {
        // Written out here rather than read from LossKind.weights, so a swapped beta there fails.
        let w: (pred: Double, sim: Double)
        switch heads.loss {
        case .pred: w = (1, 0)
        case .sim: w = (0, 1)
        case .predsim: w = (1 - Double(beta), Double(beta))
        default: preconditionFailure("no reference for \(heads.loss)")
        }
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let labels = self.labels, batch = self.batch
        let pred: ([Double], [Double], [Double]) -> Double = { h, wp, bp in
            w.pred * HeadReference.predLoss(h: h, weight: wp, bias: bp, labels: labels)
        }
        let sim: ([Double], [Double]) -> Double = { h, ws in
            w.sim * HeadReference.simLoss(h: h, weight: ws, batch: batch, target: target)
        }
        return (pred, sim)
    }

    private func checkHeadGradients(_ loss: LossKind, beta: Float, seed: UInt64) {
        let heads = makeHeads(loss, seed: seed)
        var random = TestRandom(seed: seed &+ 7)
        let h = random.uniform(batch * features, -1, 2), dh0 = random.uniform(batch * features)
        let wp = heads.predWeight?.value.doubles, bp = heads.predBias?.value.doubles, ws = heads.simWeight?.value.doubles
        let ref = referenceLoss(heads, beta: beta)
        func total(_ h: [Double], _ wp: [Double]?, _ bp: [Double]?, _ ws: [Double]?) -> Double {
            var l = 0.0
            if let wp, let bp { l += ref.pred(h, wp, bp) }
            if let ws { l += ref.sim(h, ws) }
            return l
        }
        let what = "\(loss.rawValue) beta \(beta)"
        let out = apply(heads, h: h, dh0: dh0, beta: beta)
        let numeric = numericalGradient(at: h) { total($0, wp, bp, ws) }
        // dh is added onto dh0: that addition rounds once, u |dh0 + dh|.
        let accumulation = RoundingBound.unitRoundoff * (maxAbs(dh0) + maxAbs(numeric))
        assertGradientsMatch(out.dh, numeric, "\(what): dh",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch) + accumulation)
        // Broken variant: dh moved by 10 bounds, or negated.
        assertMutationDetected(out.dh, numeric, "\(what): dh", fraction: 10 * gradientBound(batch * batch),
                               relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch) + accumulation)
        if let wp, let bp {
            assertGradientsMatch(heads.predWeight!.grad!.doubles, numericalGradient(at: wp) { total(h, $0, bp, ws) }, "\(what): dWpred",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))
            assertGradientsMatch(heads.predBias!.grad!.doubles, numericalGradient(at: bp) { total(h, wp, $0, ws) }, "\(what): dbpred",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))
            XCTAssertEqual(Double(out.pred.loss), ref.pred(h, wp, bp), accuracy: lossBound(batch * batch, ref.pred(h, wp, bp)), "\(what): pred loss")
            // Broken variant: the pred loss weighted 1% off.
            XCTAssertGreaterThan(abs(Double(out.pred.loss) - 0.99 * ref.pred(h, wp, bp)), lossBound(batch * batch, ref.pred(h, wp, bp)),
                                 "\(what): a pred loss 1% off passes the bound")
            XCTAssertEqual(out.pred.correct, HeadReference.predCorrect(h: h, weight: wp, bias: bp, labels: labels), "\(what): correct")
        }
        if let ws {
            assertGradientsMatch(heads.simWeight!.grad!.doubles, numericalGradient(at: ws) { total(h, wp, bp, $0) }, "\(what): dWsim",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))
            XCTAssertEqual(Double(out.sim.loss), ref.sim(h, ws), accuracy: lossBound(batch * batch, ref.sim(h, ws)), "\(what): sim loss")
        }
    }

    func testPredHeadGradientMatchesFiniteDifferences() { checkHeadGradients(.pred, beta: 0.7, seed: 1) }
    func testSimHeadGradientMatchesFiniteDifferences() { checkHeadGradients(.sim, beta: 0.7, seed: 2) }
    func testPredsimHeadGradientMatchesFiniteDifferences() { checkHeadGradients(.predsim, beta: 0.7, seed: 3) }

    /// sim-bpf on a Linear block has no learned head: S(h) against S(P onehot).
    func testSimBpfGradientMatchesFiniteDifferences() {
        let heads = makeHeads(.simBpf, seed: 4)
        XCTAssertTrue(heads.parameters.isEmpty)
        let p = heads.projection!.doubles
        let target = Reference.similarity(HeadReference.projectedLabels(labels, projection: p, classes: classes), rows: batch)
        // Not the one-hot target: P's columns are random, so different classes are not at -1/2.
        XCTAssertGreaterThan(maxAbs(subtract(target, HeadReference.simTarget(labels: labels, classes: classes))), 0.05)
        var random = TestRandom(seed: 44)
        let h = random.uniform(batch * features, -1, 2)
        let out = apply(heads, h: h, dh0: [Double](repeating: 0, count: h.count), beta: 0.5)
        let numeric = numericalGradient(at: h) { Reference.similarityLoss($0, rows: self.batch, target: target) }
        assertGradientsMatch(out.dh, numeric, "sim-bpf dh",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))
        XCTAssertEqual(Double(out.sim.loss), Reference.similarityLoss(h, rows: batch, target: target),
                       accuracy: lossBound(batch * batch, Reference.similarityLoss(h, rows: batch, target: target)))
    }

    /// pred-bpf: dh = dlogits B with the fixed feedback matrix B, not dlogits Wd; the decoder's
    /// own gradient is the true one.
    func testPredBpfUsesFeedbackMatrixNotDecoderWeights() {
        let heads = makeHeads(.predBpf, seed: 5)
        let size = LossKind.projectionSize
        let wd = heads.decoderWeight!.value.doubles, bd = heads.decoderBias!.value.doubles
        let feedback = heads.feedback!.doubles, p = heads.projection!.doubles
        XCTAssertGreaterThan(maxAbs(wd), 0.1, "decoder weights must be non-zero for B and Wd to differ")
        let targets = HeadReference.projectedLabels(labels, projection: p, classes: classes).map { $0 > 0 ? 1.0 : 0.0 }
        XCTAssertTrue(targets.contains(0) && targets.contains(1))
        func bce(_ h: [Double], _ wd: [Double], _ bd: [Double]) -> Double {
            Reference.binaryCrossEntropy(Reference.linear(h, batch: batch, weight: wd, outFeatures: size, bias: bd), targets: targets)
        }
        var random = TestRandom(seed: 55)
        let h = random.uniform(batch * features, -1, 2)
        let out = apply(heads, h: h, dh0: [Double](repeating: 0, count: h.count), beta: 0.5)
        XCTAssertEqual(Double(out.pred.loss), bce(h, wd, bd), accuracy: lossBound(LossKind.projectionSize, bce(h, wd, bd)), "BCE loss")

        // dlogits = (sigmoid(logits) - t) / (B * 128)
        let logits = Reference.linear(h, batch: batch, weight: wd, outFeatures: size, bias: bd)
        let dlogits = logits.indices.map { (Reference.sigmoid(logits[$0]) - targets[$0]) / Double(batch * size) }
        let viaFeedback = Reference.matmul(dlogits, feedback, m: batch, k: size, n: features)
        let viaDecoder = Reference.matmul(dlogits, wd, m: batch, k: size, n: features)
        // The true gradient goes through Wd: check that reference against finite differences.
        assertGradientsMatch(viaDecoder, numericalGradient(at: h) { bce($0, wd, bd) }, "dlogits Wd is the true gradient",
                             relativeTolerance: 0, absoluteTolerance: fd(LossKind.projectionSize))
        assertGradientsMatch(out.dh, viaFeedback, "pred-bpf dh = dlogits B",
                             relativeTolerance: gradientBound(LossKind.projectionSize), absoluteTolerance: fd(LossKind.projectionSize))
        XCTAssertNotNil(gradientMismatch(analytic: out.dh, numeric: viaDecoder, relativeTolerance: 0.1, absoluteTolerance: 0),
                        "pred-bpf dh must not be dlogits Wd")
        assertGradientsMatch(heads.decoderWeight!.grad!.doubles, numericalGradient(at: wd) { bce(h, $0, bd) }, "dWdecoder",
                             relativeTolerance: gradientBound(LossKind.projectionSize), absoluteTolerance: fd(LossKind.projectionSize))
        assertGradientsMatch(heads.decoderBias!.grad!.doubles, numericalGradient(at: bd) { bce(h, wd, $0) }, "dbdecoder",
                             relativeTolerance: gradientBound(LossKind.projectionSize), absoluteTolerance: fd(LossKind.projectionSize))
    }

    /// predsim: beta 0 leaves only pred, beta 1 only sim (losses and gradients), and in between
    /// dh = (1 - beta) dh_pred + beta dh_sim (a swapped beta fails this).
    func testBetaWeightsPredBySimilarityComplement() {
        let heads = makeHeads(.predsim, seed: 6)
        var random = TestRandom(seed: 66)
        let h = random.uniform(batch * features, -1, 2), none = [Double](repeating: 0, count: batch * features)
        let wp = heads.predWeight!.value.doubles, bp = heads.predBias!.value.doubles, ws = heads.simWeight!.value.doubles
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let predOnly = numericalGradient(at: h) { HeadReference.predLoss(h: $0, weight: wp, bias: bp, labels: self.labels) }
        let simOnly = numericalGradient(at: h) { HeadReference.simLoss(h: $0, weight: ws, batch: self.batch, target: target) }

        let beta0 = apply(heads, h: h, dh0: none, beta: 0)
        XCTAssertEqual(beta0.sim.loss, 0, "beta 0: no sim contribution to the loss")
        XCTAssertTrue(heads.simWeight!.grad!.array.allSatisfy { $0 == 0 }, "beta 0: sim head gradient must be zero")
        XCTAssertEqual(Double(beta0.pred.loss), HeadReference.predLoss(h: h, weight: wp, bias: bp, labels: labels),
                       accuracy: lossBound(batch * batch, HeadReference.predLoss(h: h, weight: wp, bias: bp, labels: labels)))
        assertGradientsMatch(beta0.dh, predOnly, "beta 0: dh is the pred gradient",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))

        let beta1 = apply(heads, h: h, dh0: none, beta: 1)
        XCTAssertEqual(beta1.pred.loss, 0, "beta 1: no pred contribution to the loss")
        XCTAssertTrue(heads.predWeight!.grad!.array.allSatisfy { $0 == 0 }, "beta 1: pred head weight gradient must be zero")
        XCTAssertTrue(heads.predBias!.grad!.array.allSatisfy { $0 == 0 }, "beta 1: pred head bias gradient must be zero")
        XCTAssertEqual(Double(beta1.sim.loss), HeadReference.simLoss(h: h, weight: ws, batch: batch, target: target),
                       accuracy: lossBound(batch * batch, HeadReference.simLoss(h: h, weight: ws, batch: batch, target: target)))
        assertGradientsMatch(beta1.dh, simOnly, "beta 1: dh is the sim gradient",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))

        let mixed = apply(heads, h: h, dh0: none, beta: 0.7)
        let expected = zip(predOnly, simOnly).map { 0.3 * $0 + 0.7 * $1 }
        assertGradientsMatch(mixed.dh, expected, "beta 0.7: 0.3 dh_pred + 0.7 dh_sim",
                             relativeTolerance: gradientBound(batch * batch), absoluteTolerance: fd(batch * batch))
    }
}
