import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// The conv blocks' local heads: what LocalHeads<ConvMap>.apply accumulates into dh and leaves in the head
/// parameters' gradients, against central finite differences of Float64 references of each
/// head's loss (pooled pred, learned 3x3 sim with spatial std or flatten, predsim, sim-bpf,
/// pred-bpf with feedback alignment).
final class ConvHeadsTests: XCTestCase {
    let batch = 6, classes = 3
    let labels: [Int32] = [0, 1, 0, 2, 1, 2]

    /// A head shape and the pred pooling it must get, worked out by hand from DESIGN.md's rule
    /// (double kh, then kw, until C ceil(H/kh) ceil(W/kw) <= dimInDecoder or kh >= H; padding
    /// kh (ceil(H/kh) - floor(H/kh)) / 2).
    struct Case {
        var channels: Int, height: Int, width: Int, dimInDecoder: Int
        var kernel = (1, 1), padding = (0, 0)
        var pooled: (Int, Int)
        var count: Int { channels * height * width }
    }

    /// C=4, 6x6, dim 16: kh 2 (4*3*6=72), kw 2 (36), kh 4 (4*2*3=24), kw 4 (16): kernel 4x4,
    /// padding (4 (2 - 1)) / 2 = 2, output 2x2 (the padded cells count in the average).
    let pooled6 = Case(channels: 4, height: 6, width: 6, dimInDecoder: 16, kernel: (4, 4), padding: (2, 2), pooled: (2, 2))
    /// C=4, 5x5, dim 16: kh 2 (4*3*5=60), kw 2 (36), kh 4 (24), kw 4 (16): kernel 4x4, padding 2,
    /// output 2x2 from an odd map.
    let pooled5 = Case(channels: 4, height: 5, width: 5, dimInDecoder: 16, kernel: (4, 4), padding: (2, 2), pooled: (2, 2))
    /// C=4, 3x3, dim 8: kh 2 (4*2*3=24), kw 2 (16), kh 4 (4*1*2=8): kernel 4x2, padding 2x1,
    /// output 1x2: vgg8b's last conv block in miniature (512 at 3x3 -> 512x1x2).
    let pooledToOneRow = Case(channels: 4, height: 3, width: 3, dimInDecoder: 8, kernel: (4, 2), padding: (2, 1), pooled: (1, 2))
    /// C=2, 3x3, dim 18: 2*3*3 = 18 already fits, no pooling.
    let unpooled = Case(channels: 2, height: 3, width: 3, dimInDecoder: 18, pooled: (3, 3))

    /// Bounds (`BlockStepBound`): the heads' results against the exact gradients within the
    /// rounding of the heads' sums (the longest: the sim conv's weight gradient over B H W, the
    /// similarity's B^2 mean, the -bpf decoder's 128 outputs) relative to the largest entry,
    /// plus the finite-difference metric; reported losses within the forward's sums.
    private func longestSum(_ c: Case) -> Int { max(batch * c.height * c.width, batch * batch, LossKind.projectionSize) }
    private func gradientBound(_ c: Case) -> Double { BlockStepBound.heads(longestSum: longestSum(c)) }
    private func fd(_ c: Case) -> Double { BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: longestSum(c)) }
    private func lossBound(_ c: Case, _ loss: Double) -> Double { BlockStepBound.loss(longestSum: longestSum(c)) * max(1, abs(loss)) }

    // MARK: running the heads

    /// Heads with non-zero pred and decoder weights (they start at zero, which would make the
    /// gradient to h vanish and every check on it vacuous).
    private func makeHeads(_ loss: LossKind, _ c: Case, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) -> LocalHeads<ConvMap> {
        var rng = Xoshiro256(seed: seed)
        let heads = LocalHeads<ConvMap>(loss: loss, channels: c.channels, height: c.height, width: c.width, classes: classes,
                              dimInDecoder: c.dimInDecoder, layer: 0, rng: &rng, ledger: .shared)
        let p = heads.pooling
        XCTAssertEqual([p.kernelHeight, p.kernelWidth, p.padHeight, p.padWidth, p.outHeight, p.outWidth],
                       [c.kernel.0, c.kernel.1, c.padding.0, c.padding.1, c.pooled.0, c.pooled.1], "\(p)", file: file, line: line)
        var random = TestRandom(seed: seed &+ 1000)
        if let w = heads.predWeight {
            XCTAssertTrue(w.value.array.allSatisfy { $0 == 0 }, "the pred head's weights start at zero", file: file, line: line)
            w.value.copy(from: random.uniform(w.count).map { Float($0) })
        }
        if let w = heads.decoderWeight {
            XCTAssertTrue(w.value.array.allSatisfy { $0 == 0 }, "the bpf decoder's weights start at zero", file: file, line: line)
            w.value.copy(from: random.uniform(w.count).map { Float($0) })
        }
        return heads
    }

    private struct Applied {
        var dh: [Double]
        var pred: HeadResult
        var sim: HeadResult
    }

    /// Runs apply on h with dh pre-filled with dh0 (apply accumulates) and returns what it added.
    private func apply(_ heads: LocalHeads<ConvMap>, _ c: Case, h: [Double], dh0: [Double], beta: Float) -> Applied {
        for p in heads.parameters { p.dropGrad() }
        let shape = [batch, c.channels, c.height, c.width]
        let dh = makeTensor(shape, dh0)
        let (pred, sim) = labels.withUnsafeBufferPointer {
            heads.apply(h: makeTensor(shape, h), labels: $0.baseAddress!, dh: dh, beta: beta)
        }
        return Applied(dh: subtract(dh.doubles, dh0), pred: pred, sim: sim)
    }

    /// A parameter's name without its block prefix: "pred.weight", "sim.weight", ...
    private func key(_ p: Parameter) -> String { String(p.name.dropFirst("blocks.0.".count)) }

    // MARK: Float64 references

    /// avgpool(h) flattened per example: (B, C h' w').
    private func pooledFeatures(_ h: [Double], _ c: Case) -> [Double] {
        ConvReference.avgPool(h, planes: batch * c.channels, height: c.height, width: c.width, kernel: c.kernel, padding: c.padding).out
    }

    /// The block's local loss from its heads, as a function of h and the head parameters (keyed
    /// as `key`): w_pred L_pred + w_sim L_sim. The weights are written out here rather than read
    /// from LossKind.weights, so a swapped beta there fails.
    private func referenceLoss(_ heads: LocalHeads<ConvMap>, _ c: Case, beta: Float) -> (_ h: [Double], _ params: [String: [Double]]) -> Double {
        let b = Double(beta)
        let w: (pred: Double, sim: Double)
        switch heads.loss {
        case .pred, .predBpf: w = (1, 0)
        case .sim, .simBpf: w = (0, 1)
        case .predsim: w = (1 - b, b)
        default: preconditionFailure("no reference for \(heads.loss)")
        }
        let wPred = w.pred, wSim = w.sim
        let labels = self.labels, batch = self.batch, classes = self.classes, size = LossKind.projectionSize
        let projection = heads.projection?.doubles
        let oneHotTarget = HeadReference.simTarget(labels: labels, classes: classes)
        let projected = projection.map { HeadReference.projectedLabels(labels, projection: $0, classes: classes) }
        let bpfSimTarget = projected.map { Reference.similarity($0, rows: batch) }
        let bpfTargets = projected?.map { $0 > 0 ? 1.0 : 0.0 }
        return { h, v in
            var total = 0.0
            if let wp = v["pred.weight"], let bp = v["pred.bias"] {
                let logits = Reference.linear(self.pooledFeatures(h, c), batch: batch, weight: wp, outFeatures: classes, bias: bp)
                total += wPred * Reference.crossEntropy(logits, labels: labels)
            }
            if let wd = v["bpf.decoder.weight"], let bd = v["bpf.decoder.bias"] {
                let logits = Reference.linear(self.pooledFeatures(h, c), batch: batch, weight: wd, outFeatures: size, bias: bd)
                total += wPred * Reference.binaryCrossEntropy(logits, targets: bpfTargets!)
            }
            if let ws = v["sim.weight"] {
                let s = ConvReference.conv3x3(h, batch: batch, channels: c.channels, height: c.height, width: c.width,
                                              weight: ws, outChannels: c.channels, bias: nil)
                let f = ConvReference.simFeatures(s, batch: batch, channels: c.channels, height: c.height, width: c.width)
                total += wSim * Reference.similarityLoss(f, rows: batch, target: oneHotTarget)
            } else if heads.loss == .simBpf {
                let f = ConvReference.simFeatures(self.pooledFeatures(h, c), batch: batch, channels: c.channels,
                                                  height: c.pooled.0, width: c.pooled.1)
                total += wSim * Reference.similarityLoss(f, rows: batch, target: bpfSimTarget!)
            }
            return total
        }
    }

    // MARK: the check

    /// dh (pre-filled, so accumulation is checked), every head parameter's gradient and the
    /// reported losses against the reference.
    private func checkHeadGradients(_ loss: LossKind, _ c: Case, beta: Float, seed: UInt64,
                                    file: StaticString = #filePath, line: UInt = #line) {
        let heads = makeHeads(loss, c, seed: seed, file: file, line: line)
        var random = TestRandom(seed: seed &+ 7)
        let h = random.uniform(batch * c.count, -1, 2), dh0 = random.uniform(batch * c.count)
        var params: [String: [Double]] = [:]
        for p in heads.parameters { params[key(p)] = p.value.doubles }
        let f = referenceLoss(heads, c, beta: beta)
        let what = "\(loss.rawValue) \(c.channels)x\(c.height)x\(c.width) dim \(c.dimInDecoder)"

        let out = apply(heads, c, h: h, dh0: dh0, beta: beta)
        XCTAssertEqual(Double(out.pred.loss + out.sim.loss), f(h, params), accuracy: lossBound(c, f(h, params)), "\(what): reported loss", file: file, line: line)
        let numeric = numericalGradient(at: h) { f($0, params) }
        // dh is added onto dh0: that addition rounds once, u |dh0 + dh|.
        let accumulation = RoundingBound.unitRoundoff * (maxAbs(dh0) + maxAbs(numeric))
        assertGradientsMatch(out.dh, numeric, "\(what): dh", relativeTolerance: gradientBound(c), absoluteTolerance: fd(c) + accumulation,
                             file: file, line: line)
        // Broken variant: dh moved by 10 bounds, or negated.
        assertMutationDetected(out.dh, numeric, "\(what): dh", fraction: 10 * gradientBound(c), relativeTolerance: gradientBound(c),
                               absoluteTolerance: fd(c) + accumulation, file: file, line: line)
        for p in heads.parameters {
            let k = key(p)
            let numeric = numericalGradient(at: params[k]!) { v in
                var all = params
                all[k] = v
                return f(h, all)
            }
            guard let grad = p.grad else { XCTFail("\(what): \(k) has no gradient", file: file, line: line); continue }
            assertGradientsMatch(grad.doubles, numeric, "\(what): d\(k)", relativeTolerance: gradientBound(c), absoluteTolerance: fd(c),
                                 file: file, line: line)
        }
    }

    // MARK: pred

    func testPredHeadWithPaddedPoolingMatchesFiniteDifferences() {
        let heads = makeHeads(.pred, pooled6, seed: 1)
        XCTAssertTrue(heads.pooling.pools)
        XCTAssertEqual(heads.predWeight!.shape, [classes, 16], "the decoder reads C h' w' = 4 * 2 * 2 features")
        checkHeadGradients(.pred, pooled6, beta: 0.7, seed: 1)
    }

    func testPredHeadWithoutPoolingMatchesFiniteDifferences() {
        let heads = makeHeads(.pred, unpooled, seed: 2)
        XCTAssertFalse(heads.pooling.pools)
        XCTAssertEqual(heads.predWeight!.shape, [classes, 18])
        checkHeadGradients(.pred, unpooled, beta: 0.7, seed: 2)
    }

    // MARK: sim

    /// C = 4 > 3, 3x3 map: learned 3x3 conv, then the spatial std (B, C).
    func testSimHeadWithSpatialStdMatchesFiniteDifferences() {
        let c = Case(channels: 4, height: 3, width: 3, dimInDecoder: 36, pooled: (3, 3))
        let heads = makeHeads(.sim, c, seed: 3)
        XCTAssertEqual(heads.simWeight!.shape, [4, 4, 3, 3])
        XCTAssertNil(heads.predWeight)
        checkHeadGradients(.sim, c, beta: 0.7, seed: 3)
    }

    /// C = 3 <= 3: the learned conv's output is flattened (B, C H W), no std.
    func testSimHeadWithThreeChannelsFlattensInsteadOfStd() {
        let c = Case(channels: 3, height: 3, width: 3, dimInDecoder: 27, pooled: (3, 3))
        checkHeadGradients(.sim, c, beta: 0.7, seed: 4)
    }

    /// A one-row map (H = 1, W = 4): the reference's `similarity_matrix` takes the std only
    /// when x.size(2) > 1 (DESIGN.md: "skip the std when C <= 3 or H == 1"), so it flattens.
    func testSimHeadOnAOneRowMapFlattensLikeTheReference() {
        let c = Case(channels: 4, height: 1, width: 4, dimInDecoder: 16, pooled: (1, 4))
        checkHeadGradients(.sim, c, beta: 0.7, seed: 5)
    }

    // MARK: predsim

    /// (1 - beta) pred on the padded pooling of an odd 5x5 map + beta sim with std, beta 0.7.
    func testPredsimHeadWithBetaPointSevenMatchesFiniteDifferences() {
        checkHeadGradients(.predsim, pooled5, beta: 0.7, seed: 6)
    }

    /// beta 0 leaves only pred, beta 1 only sim; in between dh = 0.3 dh_pred + 0.7 dh_sim.
    func testPredsimBetaWeightsPredByOneMinusBeta() {
        let c = pooled5
        let heads = makeHeads(.predsim, c, seed: 7)
        var random = TestRandom(seed: 77)
        let h = random.uniform(batch * c.count, -1, 2), none = [Double](repeating: 0, count: batch * c.count)
        var params: [String: [Double]] = [:]
        for p in heads.parameters { params[key(p)] = p.value.doubles }
        let predOnly = referenceLoss(heads, c, beta: 0), simOnly = referenceLoss(heads, c, beta: 1)
        let dPred = numericalGradient(at: h) { predOnly($0, params) }
        let dSim = numericalGradient(at: h) { simOnly($0, params) }

        let beta0 = apply(heads, c, h: h, dh0: none, beta: 0)
        XCTAssertEqual(beta0.sim.loss, 0)
        XCTAssertTrue(heads.simWeight!.grad!.array.allSatisfy { $0 == 0 }, "beta 0: sim head gradient must be zero")
        assertGradientsMatch(beta0.dh, dPred, "beta 0: dh is the pred gradient", relativeTolerance: gradientBound(c),
                             absoluteTolerance: fd(c))
        let beta1 = apply(heads, c, h: h, dh0: none, beta: 1)
        XCTAssertEqual(beta1.pred.loss, 0)
        XCTAssertTrue(heads.predWeight!.grad!.array.allSatisfy { $0 == 0 }, "beta 1: pred head gradient must be zero")
        assertGradientsMatch(beta1.dh, dSim, "beta 1: dh is the sim gradient", relativeTolerance: gradientBound(c),
                             absoluteTolerance: fd(c))
        let mixed = apply(heads, c, h: h, dh0: none, beta: 0.7)
        assertGradientsMatch(mixed.dh, zip(dPred, dSim).map { 0.3 * $0 + 0.7 * $1 }, "beta 0.7: 0.3 dh_pred + 0.7 dh_sim", relativeTolerance: gradientBound(c),
                             absoluteTolerance: fd(c))
    }

    // MARK: backprop-free variants

    /// sim-bpf: no learned head; h is pooled as for pred, then the spatial std (4 channels over
    /// a 2x2 pooled map), against S(P onehot).
    func testSimBpfPoolsThenTakesStdAndMatchesFiniteDifferences() {
        let heads = makeHeads(.simBpf, pooled6, seed: 8)
        XCTAssertTrue(heads.parameters.isEmpty, "sim-bpf trains no head")
        XCTAssertEqual(heads.projection!.shape, [LossKind.projectionSize, classes])
        checkHeadGradients(.simBpf, pooled6, beta: 0.7, seed: 8)
    }

    /// sim-bpf where the pooling leaves one row (vgg8b's last block: 512x3x3 -> 512x1x2): the
    /// reference flattens the pooled map (x.size(2) == 1) instead of taking a std over 2 cells.
    func testSimBpfPooledToOneRowFlattensLikeTheReference() {
        checkHeadGradients(.simBpf, pooledToOneRow, beta: 0.7, seed: 9)
    }

    /// pred-bpf: the decoder's own gradients are the true ones, but dh = pool^T(dlogits B) with
    /// the fixed feedback matrix B, not pool^T(dlogits Wd).
    func testPredBpfSendsTheFeedbackMatrixNotTheDecoderWeightsToH() {
        let c = pooled6
        let heads = makeHeads(.predBpf, c, seed: 10)
        let size = LossKind.projectionSize, features = 16
        XCTAssertEqual(heads.decoderWeight!.shape, [size, features])
        XCTAssertEqual(heads.feedback!.shape, [size, features])
        let wd = heads.decoderWeight!.value.doubles, bd = heads.decoderBias!.value.doubles, feedback = heads.feedback!.doubles
        XCTAssertGreaterThan(maxAbs(subtract(wd, feedback)), 0.1, "decoder weights and feedback must differ")
        let targets = HeadReference.projectedLabels(labels, projection: heads.projection!.doubles, classes: classes).map { $0 > 0 ? 1.0 : 0.0 }
        XCTAssertTrue(targets.contains(0) && targets.contains(1))
        var random = TestRandom(seed: 1010)
        let h = random.uniform(batch * c.count, -1, 2), dh0 = random.uniform(batch * c.count)

        let out = apply(heads, c, h: h, dh0: dh0, beta: 0.5)
        let pooled = pooledFeatures(h, c)
        let logits = Reference.linear(pooled, batch: batch, weight: wd, outFeatures: size, bias: bd)
        XCTAssertEqual(Double(out.pred.loss), Reference.binaryCrossEntropy(logits, targets: targets),
                       accuracy: lossBound(c, Reference.binaryCrossEntropy(logits, targets: targets)), "BCE loss")
        XCTAssertEqual(out.sim.loss, 0)
        // dlogits = (sigmoid(logits) - t) / (B * 128); the gradient to the pooled features is
        // dlogits M for M = B (feedback) or Wd (true); pool^T of it is the gradient of the
        // linear function h -> <dlogits M, pool(h)>, which finite differences give exactly.
        let dlogits = logits.indices.map { (Reference.sigmoid(logits[$0]) - targets[$0]) / Double(batch * size) }
        func throughPool(_ m: [Double]) -> [Double] {
            let dPooled = Reference.matmul(dlogits, m, m: batch, k: size, n: features)
            return numericalGradient(at: h) { dot(dPooled, self.pooledFeatures($0, c)) }
        }
        let viaFeedback = throughPool(feedback), viaDecoder = throughPool(wd)
        let trueGradient = numericalGradient(at: h) {
            Reference.binaryCrossEntropy(Reference.linear(self.pooledFeatures($0, c), batch: self.batch, weight: wd, outFeatures: size, bias: bd),
                                         targets: targets)
        }
        assertGradientsMatch(viaDecoder, trueGradient, "pool^T(dlogits Wd) is the true gradient", relativeTolerance: 0, absoluteTolerance: fd(c))
        // viaFeedback is the finite difference of a linear function: no truncation error; one
        // evaluation sums B x 16 products of dlogits B with pooled features (means of 16 cells),
        // whose magnitudes sum to `linearMagnitude` (far below the O(1) losses `fd` assumes).
        let linearMagnitude = dot(Reference.matmul(dlogits, feedback, m: batch, k: size, n: features).map(abs), pooled.map(abs))
        let linearFD = FiniteDifference.bound(step: 1e-6, thirdDerivative: 0, terms: batch * features * 17, absoluteSum: linearMagnitude)
        // dh is added onto dh0 (|dh0| up to 1, dh of 1e-4): that addition rounds once, u |dh0 + dh|.
        let accumulation = RoundingBound.unitRoundoff * (maxAbs(dh0) + maxAbs(viaFeedback))
        assertGradientsMatch(out.dh, viaFeedback, "pred-bpf dh = pool^T(dlogits B)", relativeTolerance: gradientBound(c),
                             absoluteTolerance: linearFD + accumulation, minimumNorm: 1e-4)
        // Broken variant: dh moved by 10 bounds, or negated.
        assertMutationDetected(out.dh, viaFeedback, "pred-bpf dh", fraction: 10 * gradientBound(c), relativeTolerance: gradientBound(c),
                               absoluteTolerance: linearFD + accumulation)
        XCTAssertNotNil(gradientMismatch(analytic: out.dh, numeric: viaDecoder, relativeTolerance: 0.1, absoluteTolerance: 0),
                        "pred-bpf dh must not follow the decoder weights")
        // The decoder itself learns with its true gradient.
        let params = ["bpf.decoder.weight": wd, "bpf.decoder.bias": bd]
        let f = referenceLoss(heads, c, beta: 0.5)
        for p in heads.parameters {
            let k = key(p)
            let numeric = numericalGradient(at: params[k]!) { v in
                var all = params
                all[k] = v
                return f(h, all)
            }
            assertGradientsMatch(p.grad!.doubles, numeric, "pred-bpf d\(k)", relativeTolerance: gradientBound(c),
                             absoluteTolerance: fd(c), minimumNorm: 1e-4)
        }
    }
}
