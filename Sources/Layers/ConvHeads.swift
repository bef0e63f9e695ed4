import MemoryLedger
import Randomness
import Tensors

/// The local heads of a conv block on h (B, C, H, W) (DESIGN.md section 2):
/// - pred: average-pool h until C h' w' <= dimInDecoder (`PredHeadPooling`), flatten,
///   Linear -> classes (weight zero), softmax cross-entropy;
/// - sim: a learned 3x3 conv C -> C (pad 1, no bias), then the per-channel spatial standard
///   deviation giving (B, C) (flattened instead when C <= 3 or H == 1), similarity
///   matching against S(Y);
/// - bpf variants: pred-bpf decodes the pooled h to 128 outputs with feedback alignment
///   (sigmoid BCE against P onehot > 0); sim-bpf pools h as for pred, then takes the std.
public final class ConvHeads {
    public let loss: LossKind
    public let channels: Int, height: Int, width: Int
    public let classes: Int
    public let layer: Int
    public let pooling: PredHeadPooling
    public let predWeight: Parameter?
    public let predBias: Parameter?
    public let simWeight: Parameter?
    public let decoderWeight: Parameter?
    public let decoderBias: Parameter?
    public let feedback: Tensor?
    public let projection: Tensor?
    let simWorkspace: ConvWorkspace?
    let ledger: Ledger

    public init(loss: LossKind, channels: Int, height: Int, width: Int, classes: Int, dimInDecoder: Int,
                layer: Int, rng: inout Xoshiro256, ledger: Ledger, sharedWorkspace: ConvWorkspace? = nil) {
        self.loss = loss
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
        self.layer = layer
        self.ledger = ledger
        pooling = PredHeadPooling(channels: channels, height: height, width: width, dimInDecoder: dimInDecoder)
        let features = pooling.outputFeatures
        let prefix = "blocks.\(layer)"
        if loss.usesPred && !loss.isBackpropFree {
            (predWeight, predBias) = HeadParameters.pred(layer: layer, features: features, classes: classes, rng: &rng, ledger: ledger)
        } else {
            predWeight = nil; predBias = nil
        }
        if loss.usesSim && !loss.isBackpropFree {
            let w = Parameter(name: "\(prefix).sim.weight", shape: [channels, channels, 3, 3], category: .headWeights, layer: layer, label: "sim.weight", ledger: ledger)
            w.initUniform(bound: 1 / Float(channels * 9).squareRoot(), rng: &rng)
            simWeight = w
            let simGeometry = ConvGeometry(inChannels: channels, outChannels: channels, height: height, width: width)
            simWorkspace = sharedWorkspace?.serving(simGeometry) ?? ConvWorkspace(simGeometry, layer: layer, ledger: ledger)
        } else {
            simWeight = nil; simWorkspace = nil
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

    public var parameters: [Parameter] { [predWeight, predBias, simWeight, decoderWeight, decoderBias].compactMap { $0 } }

    public var fixedTensors: [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        if let projection { out.append(("blocks.\(layer).bpf.projection", projection)) }
        if let feedback { out.append(("blocks.\(layer).bpf.feedback", feedback)) }
        return out
    }

    /// The std step applies when there are more than 3 channels and more than one row: the
    /// reference's `similarity_matrix` tests `x.size(1) > 3 and x.size(2) > 1` (the height, not
    /// H W), so a one-row map such as vgg8b's last block pooled for sim-bpf (512x1x2) is
    /// flattened, not reduced to a std over its 2 cells. H > 1 also gives the std N >= 2.
    static func usesStd(channels: Int, height: Int, width: Int) -> Bool { channels > 3 && height > 1 }

    /// Local loss on h (B, C, H, W); accumulates dL/dh into `dh` and leaves head gradients.
    public func apply(h: Tensor, labels: UnsafePointer<Int32>, dh: Tensor, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = loss.weights(beta: beta)
        let batch = h.rowCount
        var pred = HeadResult(), sim = HeadResult()
        if loss.usesPred || (loss.usesSim && loss.isBackpropFree) {
            // The pooled h that pred, pred-bpf and sim-bpf read: (B, C, h', w'), or h itself.
            let pooled = pool(h)
            let dPooled = pooling.pools ? Tensor(pooled.shape, .activationGrads, layer: layer, label: "pred.pooled.grad", ledger: ledger) : dh
            pooledHeads(pooled, into: dPooled, labels: labels, weights: w, pred: &pred, sim: &sim)
            if pooling.pools {
                AvgPoolKernel.backward(dy: dPooled, into: dh, geometry: poolGeometry, accumulate: true)
            }
        }
        if let simWeight, let simWorkspace {
            if ConvHeads.usesStd(channels: channels, height: height, width: width) {
                simChunked(h, weight: simWeight, workspace: simWorkspace, labels: labels, scale: w.sim, dh: dh, result: &sim)
            } else {
                // s = conv3x3(h) (B, C, H, W), flattened: the whole batch at once (C <= 3 or 1x1: small)
                let s = Tensor(h.shape, .activations, layer: layer, label: "sim.conv", ledger: ledger, zeroed: false)
                Conv2dKernel.forward(x: h, weight: simWeight.value, bias: nil, into: s, workspace: simWorkspace)
                var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: nil, layer: layer, ledger: ledger)
                // dL/ds overwrites s in place: the flattened path copies the gradient after the
                // loss is done with s.
                simThroughStd(s, target: &target, scale: w.sim, into: s, accumulate: false, result: &sim)
                Conv2dKernel.backwardWeights(dy: s, x: h, weightGrad: simWeight.makeGrad(), biasGrad: nil, workspace: simWorkspace)
                Conv2dKernel.backwardData(dy: s, weight: simWeight.value, into: dh, workspace: simWorkspace, accumulate: true)
            }
        }
        return (pred, sim)
    }

    /// The heads that read the pooled h (pred, pred-bpf, sim-bpf) on `pooled` (B, C, h', w'):
    /// their losses into `pred` and `sim`, the head weights' gradients, and dL/d(pooled) added
    /// to `dPooled`.
    func pooledHeads(_ pooled: Tensor, into dPooled: Tensor, labels: UnsafePointer<Int32>,
                     weights w: (pred: Float, sim: Float, output: Float), pred: inout HeadResult, sim: inout HeadResult) {
        let batch = pooled.rowCount
        let flat = pooled.reshaped([batch, pooling.outputFeatures])
        let dFlat = dPooled.reshaped([batch, pooling.outputFeatures])
        if let predWeight, let predBias {
            let logits = Tensor([batch, classes], .activations, layer: layer, label: "pred.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: flat, weight: predWeight.value, bias: predBias.value, into: logits)
            let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: w.pred)
            pred = HeadResult(loss: w.pred * r.loss, correct: r.correct)
            LinearKernel.backward(dy: logits, x: flat, weight: predWeight.value, weightGrad: predWeight.makeGrad(),
                                  biasGrad: predBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, predWeight.value, into: dFlat, beta: 1)
        }
        if let decoderWeight, let decoderBias, let feedback, let projection {
            let size = LocalHeads.projectionSize
            let logits = Tensor([batch, size], .activations, layer: layer, label: "bpf.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: flat, weight: decoderWeight.value, bias: decoderBias.value, into: logits)
            let targets = SimilarityLoss.projectedLabels(labels, batch: batch, classes: classes, projection: projection, layer: layer, ledger: ledger)
            for i in 0..<targets.count { targets.pointer[i] = targets.pointer[i] > 0 ? 1 : 0 }
            pred.loss = w.pred * BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: logits, scale: w.pred)
            LinearKernel.backward(dy: logits, x: flat, weight: decoderWeight.value, weightGrad: decoderWeight.makeGrad(),
                                  biasGrad: decoderBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, feedback, into: dFlat, beta: 1)
        }
        if loss.usesSim && loss.isBackpropFree {
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: projection, layer: layer, ledger: ledger)
            simThroughStd(pooled, target: &target, scale: w.sim, into: dPooled, accumulate: true, result: &sim)
        }
    }

    /// Images per chunk of the sim head (rounded to a multiple of the conv's images per GEMM).
    static let simChunkImages = 16

    /// The sim head with its conv output s (B, C, H, W) never whole (free at last use, DESIGN.md
    /// section 3 item 1): the loss depends on s only through its spatial std (B, C), so s is
    /// made a chunk of images at a time and reduced to its std at once; after the loss, each
    /// chunk's s is recomputed and differentiated, dL/ds overwriting s in place (the std backward
    /// reads a plane's values before writing that plane's gradient). Chunks are multiples of the
    /// conv's images per GEMM, so every GEMM is the full batch's, in the same order: the loss,
    /// the weight gradient and dh are the same bits as with a whole-batch s
    /// (`ConvSimHeadChunkTests`). Costs one more sim-head conv forward per step; saves a
    /// (B, C, H, W) activation and its gradient: 2 x 98 MiB at vgg8b's block 1, batch 128.
    private func simChunked(_ h: Tensor, weight: Parameter, workspace: ConvWorkspace, labels: UnsafePointer<Int32>,
                            scale: Float, dh: Tensor, result: inout HeadResult) {
        let batch = h.rowCount
        let group = workspace.imagesPerGemm
        let chunk = min(batch, max(group, ConvHeads.simChunkImages / group * group))
        let chunks = stride(from: 0, to: batch, by: chunk).map { $0..<min($0 + chunk, batch) }
        var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: nil, layer: layer, ledger: ledger)
        // std (B, C): the spatial std of s = conv3x3(h), one chunk of s at a time
        let std = Tensor([batch, channels], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
        let s = Tensor([chunk, channels, height, width], .activations, layer: layer, label: "sim.conv chunk", ledger: ledger, zeroed: false)
        for range in chunks {
            let sc = s.rows(0..<range.count)
            Conv2dKernel.forward(x: h.rows(range), weight: weight.value, bias: nil, into: sc, workspace: workspace)
            SpatialStdKernel.forward(x: sc, into: std.rows(range))
        }
        var features: Tensor? = std  // the loss drops its reference; std stays for the backward
        let (loss, dstd) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
        result.loss = loss
        let weightGrad = weight.makeGrad()
        for range in chunks {
            let sc = s.rows(0..<range.count), hc = h.rows(range)
            Conv2dKernel.forward(x: hc, weight: weight.value, bias: nil, into: sc, workspace: workspace)  // recompute
            SpatialStdKernel.backward(ds: dstd.rows(range), x: sc, s: std.rows(range), into: sc)
            Conv2dKernel.backwardWeights(dy: sc, x: hc, weightGrad: weightGrad, biasGrad: nil, workspace: workspace,
                                         accumulate: range.lowerBound > 0)
            Conv2dKernel.backwardData(dy: sc, weight: weight.value, into: dh.rows(range), workspace: workspace, accumulate: true)
        }
    }

    var poolGeometry: AvgPoolGeometry {
        AvgPoolGeometry(channels: channels, height: height, width: width, kernelHeight: pooling.kernelHeight,
                        kernelWidth: pooling.kernelWidth, padHeight: pooling.padHeight, padWidth: pooling.padWidth)
    }

    private func pool(_ h: Tensor) -> Tensor {
        guard pooling.pools else { return h }
        let g = poolGeometry
        let out = Tensor(g.outputShape(batch: h.rowCount), .activations, layer: layer, label: "pred.pooled", ledger: ledger, zeroed: false)
        AvgPoolKernel.forward(x: h, into: out, geometry: g)
        return out
    }

    /// Sim loss on x (B, C, H, W) through the per-channel spatial std (or flattened), writing
    /// dL/dx into `dx` (added to what it holds when `accumulate`). Drops `target` once the loss
    /// is taken.
    func simThroughStd(_ x: Tensor, target: inout Tensor?, scale: Float, into dx: Tensor, accumulate: Bool, result: inout HeadResult) {
        let batch = x.rowCount, c = x.shape[1], hh = x.shape[2], ww = x.shape[3]
        if ConvHeads.usesStd(channels: c, height: hh, width: ww) {
            let std = Tensor([batch, c], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
            SpatialStdKernel.forward(x: x, into: std)
            var features: Tensor? = std  // std itself stays: its backward reads it
            let (loss, dstd) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
            result.loss = loss
            SpatialStdKernel.backward(ds: dstd, x: x, s: std, into: dx, accumulate: accumulate)
        } else {
            var features: Tensor? = x  // the caller holds x
            let (loss, dflat) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: scale, layer: layer, ledger: ledger)
            result.loss = loss
            let d = dx.pointer, g = dflat.pointer
            for i in 0..<dx.count { d[i] = accumulate ? d[i] + g[i] : g[i] }
        }
    }
}

extension PredHeadPooling {
    /// Features the head's decoder reads: C h' w'.
    var outputFeatures: Int { channels * outHeight * outWidth }
}
