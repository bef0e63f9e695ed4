import MemoryLedger
import Randomness
import Tensors

/// What a local head reports for one batch.
public struct HeadResult: Sendable {
    /// The head's weighted contribution to the block's local loss: (1 - beta) L_pred or
    /// beta L_sim for the mixed losses, so pred + sim is the loss the block minimises.
    public var loss: Float = 0
    /// Correct predictions of the pred head (nil for heads that do not classify).
    public var correct: Int?
}

/// The local heads of one hidden block on its output h (DESIGN.md section 2), for either map:
/// - pred: the decoder features (conv: h average-pooled until C h' w' <= dimInDecoder,
///   `PredHeadPooling`; linear: h itself), Linear -> classes (weight zero), cross-entropy;
/// - sim: the block's map made square (a learned Linear F -> F, or a 3x3 conv C -> C, pad 1,
///   neither with bias), then for feature maps the per-channel spatial standard deviation
///   giving (B, C) (flattened instead when C <= 3 or H == 1), similarity matching against S(Y);
/// - bpf variants: a fixed label projection P; pred-bpf decodes the decoder features to 128
///   outputs with feedback alignment (sigmoid BCE against P onehot > 0); sim-bpf takes S of the
///   decoder features (their std for feature maps) against S(P onehot).
public final class LocalHeads<Map: HiddenMap> {
    public let loss: LossKind
    /// One example's h: (C, H, W), or (F, 1, 1) for a linear block.
    public let output: FeatureShape
    public let classes: Int
    public let layer: Int
    /// How the pred, pred-bpf and sim-bpf heads pool h; a linear block's does not pool.
    public let pooling: PredHeadPooling

    // pred: Linear(decoder features -> classes), weight zero, bias default init.
    public let predWeight: Parameter?
    public let predBias: Parameter?
    // sim: the square map's weight, no bias.
    public let simWeight: Parameter?
    // bpf: decoder Linear(decoder features -> 128), weight zero; fixed feedback matrix B
    // (128, decoder features); fixed label projection P (128, classes).
    public let decoderWeight: Parameter?
    public let decoderBias: Parameter?
    public let feedback: Tensor?
    public let projection: Tensor?
    /// The sim head's learned map (nil without a learned sim head).
    public let simMap: Map?
    /// Whether the sim head keeps its conv output s (B, C, H, W) for the backward instead of
    /// recomputing it chunk by chunk (`simChunked`): one sim-head conv forward less per step,
    /// s held whole (98 MiB at vgg8b's block 1, batch 128). The same bits either way. Set
    /// through `Network.keepsSimOutput`; chunked local steps (`ChunkedHeads`) always recompute.
    public var keepsSimOutput = false
    let ledger: Ledger

    /// Draws from `rng` in a fixed order (pred bias, sim weight, P, then B; the pred-bpf decoder
    /// starts at zero and draws nothing).
    public init(loss: LossKind, output: FeatureShape, classes: Int, dimInDecoder: Int, layer: Int,
                rng: inout Xoshiro256, ledger: Ledger, sharedWorkspace: ConvWorkspace? = nil) {
        self.loss = loss
        self.output = output
        self.classes = classes
        self.layer = layer
        self.ledger = ledger
        // A Linear block's pred head reads h directly: a decoder limit of all of h never pools.
        pooling = PredHeadPooling(channels: output.channels, height: output.height, width: output.width,
                                  dimInDecoder: Map.isSpatial ? dimInDecoder : output.count)
        let features = pooling.features
        if loss.usesPred && !loss.isBackpropFree {
            (predWeight, predBias) = HeadParameters.pred(layer: layer, features: features, classes: classes, rng: &rng, ledger: ledger)
        } else {
            predWeight = nil; predBias = nil
        }
        if loss.usesSim && !loss.isBackpropFree {
            let map = Map.square(over: output, layer: layer, ledger: ledger, sharedWorkspace: sharedWorkspace)
            let w = Parameter(name: "blocks.\(layer).sim.weight", shape: map.weightShape, category: .headWeights, layer: layer,
                              label: "sim.weight", ledger: ledger)
            w.initUniform(bound: 1 / Float(map.fanIn).squareRoot(), rng: &rng)
            simWeight = w
            simMap = map
        } else {
            simWeight = nil; simMap = nil
        }
        if loss.isBackpropFree {
            projection = HeadParameters.projection(layer: layer, classes: classes, rng: &rng, ledger: ledger)
        } else {
            projection = nil
        }
        if loss.usesPred && loss.isBackpropFree {
            (decoderWeight, decoderBias, feedback) = HeadParameters.decoder(layer: layer, features: features, rng: &rng, ledger: ledger)
        } else {
            decoderWeight = nil; decoderBias = nil; feedback = nil
        }
    }

    /// Trainable head parameters.
    public var parameters: [Parameter] { [predWeight, predBias, simWeight, decoderWeight, decoderBias].compactMap { $0 } }

    /// Fixed (untrained) head tensors, saved in checkpoints so a resumed run uses the same ones.
    public var fixedTensors: [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        if let projection { out.append(("blocks.\(layer).bpf.projection", projection)) }
        if let feedback { out.append(("blocks.\(layer).bpf.feedback", feedback)) }
        return out
    }

    /// The heads that read the decoder features (the pooled h): pred, pred-bpf and sim-bpf.
    var readsDecoderFeatures: Bool { loss.usesPred || (loss.usesSim && loss.isBackpropFree) }

    /// h of `batch` examples: (B, C, H, W), or (B, F).
    func hShape(batch: Int) -> [Int] {
        Map.isSpatial ? [batch, output.channels, output.height, output.width] : [batch, output.channels]
    }

    /// The std step applies to feature maps with more than 3 channels and more than one row: the
    /// reference's `similarity_matrix` tests `x.size(1) > 3 and x.size(2) > 1` (the height, not
    /// H W), so a one-row map such as vgg8b's last block pooled for sim-bpf (512x1x2) is
    /// flattened, not reduced to a std over its 2 cells. H > 1 also gives the std N >= 2.
    static func usesStd(channels: Int, height: Int, width: Int) -> Bool { Map.isSpatial && channels > 3 && height > 1 }

    /// Whether the std step applies to a tensor x of (B, C, H, W) (never to a (B, F) one).
    static func usesStd(_ x: Tensor) -> Bool { x.shape.count == 4 && usesStd(channels: x.shape[1], height: x.shape[2], width: x.shape[3]) }

    /// Computes the local loss on h (pre-dropout), accumulates dL/dh into `dh` and leaves the
    /// head parameters' gradients in place for the block's optimizer step.
    ///
    /// Every temporary is freed at a fixed point, the same in debug and release builds: each
    /// lives in a `do` scope that ends with its last use, or in an optional that is set to nil
    /// there. The order (which `MemoryPlanner` mirrors for the mlp): pred logits with the pred
    /// gradients, freed after dh is updated; the sim target (its one-hot and normalisation
    /// scratch freed as soon as it is built); the sim head output, freed once normalised; the
    /// B x B matrix and the target, freed once the gradient is through; the sim gradient, freed
    /// after dh.
    // h, dh: (B, C, H, W) or (B, F)
    public func apply(h: Tensor, labels: UnsafePointer<Int32>, dh: Tensor, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = loss.weights(beta: beta)
        var pred = HeadResult(), sim = HeadResult()
        if readsDecoderFeatures {
            // The pooled h that pred, pred-bpf and sim-bpf read: (B, C, h', w'), or h itself.
            StepProfiler.measure(.predHead, layer: layer) {
                let pooled = pool(h)
                let dPooled = pooling.pools ? Tensor(pooled.shape, .activationGrads, layer: layer, label: "pred.pooled.grad", ledger: ledger) : dh
                decoderHeads(pooled, into: dPooled, labels: labels, weights: w, pred: &pred, sim: &sim)
                if pooling.pools {
                    AvgPoolKernel.backward(dy: dPooled, into: dh, geometry: pooling.geometry, accumulate: true)
                }
            }
        }
        if let simWeight, let simMap {
            if LocalHeads.usesStd(channels: output.channels, height: output.height, width: output.width) {
                simChunked(h, weight: simWeight, map: simMap, labels: labels, scale: w.sim, dh: dh, result: &sim)
            } else {
                simWhole(h, weight: simWeight, map: simMap, labels: labels, scale: w.sim, dh: dh, result: &sim)
            }
        }
        return (pred, sim)
    }

    /// The heads that read the decoder features (pred, pred-bpf, sim-bpf) on `pooled`
    /// (B, C, h', w') or (B, F): their losses into `pred` and `sim`, the head weights'
    /// gradients, and dL/d(pooled) added to `dPooled`.
    func decoderHeads(_ pooled: Tensor, into dPooled: Tensor, labels: UnsafePointer<Int32>,
                      weights w: (pred: Float, sim: Float, output: Float), pred: inout HeadResult, sim: inout HeadResult) {
        let batch = pooled.rowCount
        let flat = pooled.reshaped([batch, pooling.features])
        let dFlat = dPooled.reshaped([batch, pooling.features])
        if let predWeight, let predBias {
            // logits (B, K) = x Wp^T + bp; CE; dWp = dlogits^T x; dx += dlogits Wp
            let logits = Tensor([batch, classes], .activations, layer: layer, label: "pred.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: flat, weight: predWeight.value, bias: predBias.value, into: logits)
            let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: w.pred)
            // CrossEntropy returns the unscaled loss (its gradient is scaled); the sim path
            // reports the scaled one, so weight this one the same way.
            pred = HeadResult(loss: w.pred * r.loss, correct: r.correct)
            LinearKernel.backward(dy: logits, x: flat, weight: predWeight.value, weightGrad: predWeight.makeGrad(),
                                  biasGrad: predBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, predWeight.value, into: dFlat, beta: 1)
            withExtendedLifetime(logits) {}
        }
        if let decoderWeight, let decoderBias, let feedback, let projection {
            // Feedback alignment: logits (B, 128) = x Wd^T + bd against (onehot P^T > 0);
            // the gradient reaches x through the fixed B, not Wd^T.
            let logits = Tensor([batch, LossKind.projectionSize], .activations, layer: layer, label: "bpf.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: flat, weight: decoderWeight.value, bias: decoderBias.value, into: logits)
            pred.loss = decoderLoss(logits, labels: labels, projection: projection, scale: w.pred)
            LinearKernel.backward(dy: logits, x: flat, weight: decoderWeight.value, weightGrad: decoderWeight.makeGrad(),
                                  biasGrad: decoderBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, feedback, into: dFlat, beta: 1)
            withExtendedLifetime(logits) {}
        }
        if loss.usesSim && loss.isBackpropFree {
            // S(P onehot): the projected labels and the normalisation scratch are freed inside.
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: projection,
                                                        layer: layer, ledger: ledger)
            simThroughStd(pooled, target: &target, scale: w.sim, into: dPooled, accumulate: true, result: &sim)
        }
    }

    /// The pred-bpf loss on the decoder's logits against (P onehot > 0), weighted by `scale`;
    /// dL/dlogits overwrites the logits. The targets are freed before it returns.
    // logits: (B, 128) -> the same tensor holding its gradient
    func decoderLoss(_ logits: Tensor, labels: UnsafePointer<Int32>, projection: Tensor, scale: Float) -> Float {
        let targets = SimilarityLoss.projectedLabels(labels, batch: logits.rowCount, classes: classes, projection: projection,
                                                     layer: layer, ledger: ledger)
        let pp = targets.pointer
        for i in 0..<targets.count { pp[i] = pp[i] > 0 ? 1 : 0 }
        let loss = scale * BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: logits, scale: scale)
        withExtendedLifetime(targets) {}
        return loss
    }

    /// The learned sim head on the whole batch, its output s flattened (a Linear block's
    /// (B, F); a feature map with C <= 3 or H == 1, small).
    // h: (B, C, H, W) or (B, F) -> s: the same shape; L = mse(S(s), S(Y)); dW = from ds and h; dh += map^T(ds)
    private func simWhole(_ h: Tensor, weight: Parameter, map: Map, labels: UnsafePointer<Int32>,
                          scale: Float, dh: Tensor, result: inout HeadResult) {
        let batch = h.rowCount
        var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: nil,
                                                    layer: layer, ledger: ledger)
        // s is held only here, so lossAndGrad frees it once it is normalised.
        var s: Tensor? = Tensor(map.outputShape(batch: batch), .activations, layer: layer, label: "sim.features", ledger: ledger, zeroed: false)
        map.forward(x: h, weight: weight.value, bias: nil, into: s!)
        let (l, flat) = SimilarityLoss.lossAndGrad(features: &s, target: &target, scale: scale, layer: layer, ledger: ledger)
        result.loss = l
        let ds = flat.reshaped(map.outputShape(batch: batch))
        map.backwardWeights(dy: ds, x: h, weightGrad: weight.makeGrad(), biasGrad: nil, accumulate: false)
        map.backwardData(dy: ds, weight: weight.value, into: dh, accumulate: true)
        withExtendedLifetime(flat) {}
    }

    /// Images per chunk of the sim head (rounded to a multiple of the conv's images per GEMM).
    static var simChunkImages: Int { 16 }

    /// The sim head with its conv output s (B, C, H, W) never whole (free at last use, DESIGN.md
    /// section 3 item 1): the loss depends on s only through its spatial std (B, C), so s is
    /// made a chunk of images at a time and reduced to its std at once; after the loss, each
    /// chunk's s is recomputed and differentiated, dL/ds overwriting s in place (the std backward
    /// reads a plane's values before writing that plane's gradient). Chunks are multiples of the
    /// conv's images per GEMM, so every GEMM is the full batch's, in the same order: the loss,
    /// the weight gradient and dh are the same bits as with a whole-batch s
    /// (`ConvSimHeadChunkTests`). Costs one more sim-head conv forward per step; saves a
    /// (B, C, H, W) activation: 98 MiB at vgg8b's block 1, batch 128 (its gradient overwrites
    /// it in place either way). With `keepsSimOutput`, s is made whole, chunk by chunk with the
    /// same GEMMs, and kept for the backward: the same bits without the second forward.
    // h: (B, C, H, W) -> std: (B, C); dh: (B, C, H, W) += conv^T(dL/ds)
    private func simChunked(_ h: Tensor, weight: Parameter, map: Map, labels: UnsafePointer<Int32>,
                            scale: Float, dh: Tensor, result: inout HeadResult) {
        let batch = h.rowCount
        let group = map.examplesPerGemm
        let chunk = min(batch, max(group, LocalHeads.simChunkImages / group * group))
        let chunks = stride(from: 0, to: batch, by: chunk).map { $0..<min($0 + chunk, batch) }
        var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: nil, layer: layer, ledger: ledger)
        let std = Tensor([batch, output.channels], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
        let s = keepsSimOutput
            ? Tensor(map.outputShape(batch: batch), .activations, layer: layer, label: "sim.conv", ledger: ledger, zeroed: false)
            : Tensor(map.outputShape(batch: chunk), .activations, layer: layer, label: "sim.conv chunk", ledger: ledger, zeroed: false)
        // The sim weight does not change until the block's update: its transformed filters
        // (Winograd) are made once for all chunks.
        map.reusingTransformedFilters {
            simChunkLoops(h, weight: weight, map: map, s: s, std: std, chunks: chunks, target: &target, scale: scale, dh: dh, result: &result)
        }
    }

    private func simChunkLoops(_ h: Tensor, weight: Parameter, map: Map, s: Tensor, std: Tensor, chunks: [Range<Int>],
                               target: inout Tensor?, scale: Float, dh: Tensor, result: inout HeadResult) {
        let kept = keepsSimOutput
        for range in chunks {
            let sc = kept ? s.rows(range) : s.rows(0..<range.count)
            map.forward(x: h.rows(range), weight: weight.value, bias: nil, into: sc)
            StepProfiler.measure(.simStd, layer: layer) { SpatialStdKernel.forward(x: sc, into: std.rows(range)) }
        }
        var features: Tensor? = std  // the loss drops its reference; std stays for the backward
        let (loss, dstd) = StepProfiler.measure(.simLoss, layer: layer) {
            SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
        }
        result.loss = loss
        let weightGrad = weight.makeGrad()
        for range in chunks {
            let sc = kept ? s.rows(range) : s.rows(0..<range.count), hc = h.rows(range)
            if !kept { map.forward(x: hc, weight: weight.value, bias: nil, into: sc) }  // recompute
            StepProfiler.measure(.simStd, layer: layer) { SpatialStdKernel.backward(ds: dstd.rows(range), x: sc, s: std.rows(range), into: sc) }
            map.backwardWeights(dy: sc, x: hc, weightGrad: weightGrad, biasGrad: nil, accumulate: range.lowerBound > 0)
            map.backwardData(dy: sc, weight: weight.value, into: dh.rows(range), accumulate: true)
        }
    }

    // h: (B, C, H, W) -> pooled: (B, C, h', w'), or h itself when the head does not pool
    private func pool(_ h: Tensor) -> Tensor {
        guard pooling.pools else { return h }
        let g = pooling.geometry
        let out = Tensor(g.outputShape(batch: h.rowCount), .activations, layer: layer, label: "pred.pooled", ledger: ledger, zeroed: false)
        AvgPoolKernel.forward(x: h, into: out, geometry: g)
        return out
    }

    /// Sim loss on x (B, C, H, W) through the per-channel spatial std, or on x flattened, writing
    /// dL/dx into `dx` (added to what it holds when `accumulate`). Drops `target` once the loss
    /// is taken.
    func simThroughStd(_ x: Tensor, target: inout Tensor?, scale: Float, into dx: Tensor, accumulate: Bool, result: inout HeadResult) {
        if LocalHeads.usesStd(x) {
            let std = Tensor([x.rowCount, x.shape[1]], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
            SpatialStdKernel.forward(x: x, into: std)
            var features: Tensor? = std  // std itself stays: its backward reads it
            let (loss, dstd) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
            result.loss = loss
            SpatialStdKernel.backward(ds: dstd, x: x, s: std, into: dx, accumulate: accumulate)
        } else {
            // Dropping this reference to x frees nothing: the caller holds x (h, or the pooled h).
            var features: Tensor? = x
            let (loss, dflat) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
            result.loss = loss
            let d = dx.pointer, g = dflat.pointer
            for i in 0..<dx.count { d[i] = accumulate ? d[i] + g[i] : g[i] }
            withExtendedLifetime(dflat) {}
        }
    }
}

extension LocalHeads where Map == LinearMap {
    /// The heads of a Linear block of width `features`.
    public convenience init(loss: LossKind, features: Int, classes: Int, layer: Int, rng: inout Xoshiro256, ledger: Ledger) {
        self.init(loss: loss, output: FeatureShape(channels: features, height: 1, width: 1), classes: classes,
                  dimInDecoder: features, layer: layer, rng: &rng, ledger: ledger)
    }

    /// Width of the block the heads read.
    public var features: Int { output.channels }
}

extension LocalHeads where Map == ConvMap {
    /// The heads of a conv block whose h is (B, `channels`, `height`, `width`).
    public convenience init(loss: LossKind, channels: Int, height: Int, width: Int, classes: Int, dimInDecoder: Int,
                            layer: Int, rng: inout Xoshiro256, ledger: Ledger, sharedWorkspace: ConvWorkspace? = nil) {
        self.init(loss: loss, output: FeatureShape(channels: channels, height: height, width: width), classes: classes,
                  dimInDecoder: dimInDecoder, layer: layer, rng: &rng, ledger: ledger, sharedWorkspace: sharedWorkspace)
    }

    public var channels: Int { output.channels }
    public var height: Int { output.height }
    public var width: Int { output.width }
}
