import MemoryLedger
import Tensors

/// The local heads of a conv block over a batch seen a chunk at a time (exact chunked local
/// steps, DESIGN.md section 3 item 2). Each head reads the batch only through a full-batch
/// summary of h, gathered one chunk of images at a time:
/// - pred, pred-bpf and sim-bpf: the average-pooled h (B, C, h', w'), at most dimInDecoder
///   values per image (h itself when the head does not pool, then equally small);
/// - sim: the per-channel spatial std of the head's conv output (B, C) (or, when the std step
///   does not apply, the conv output itself, flattened).
/// `loss` takes the losses on the summaries and leaves their gradients; `backward` sends a
/// chunk's rows of those gradients into dL/dh of the chunk, recomputing the sim conv of the
/// chunk. The numbers equal `ConvHeads.apply` on the whole batch up to summation order.
final class ChunkedConvHeads {
    let heads: ConvHeads
    let batch: Int
    private let ledger: Ledger
    /// The pooled h (B, C, h', w') until the loss; then its gradient.
    private var pooled: Tensor?
    private var pooledGrad: Tensor?
    /// sim: std (B, C) of s = conv3x3(h), kept for its backward; or s (B, C, H, W) itself
    /// when the std step does not apply (dropped once the loss normalises it).
    private var simFeatures: Tensor?
    private var simGrad: Tensor?
    /// One chunk of s = conv3x3(h) (chunk, C, H, W), which its backward overwrites with dL/ds.
    private var simChunk: Tensor?
    private var simUsesStd: Bool { ConvHeads.usesStd(channels: heads.channels, height: heads.height, width: heads.width) }

    init(_ heads: ConvHeads, batch: Int, chunk: Int, ledger: Ledger) {
        self.heads = heads
        self.batch = batch
        self.ledger = ledger
        let layer = heads.layer, c = heads.channels, hh = heads.height, ww = heads.width
        if heads.loss.usesPred || (heads.loss.usesSim && heads.loss.isBackpropFree) {
            let shape = heads.pooling.pools ? heads.poolGeometry.outputShape(batch: batch) : [batch, c, hh, ww]
            pooled = Tensor(shape, .activations, layer: layer, label: "pred.pooled", ledger: ledger, zeroed: false)
        }
        if heads.simWeight != nil {
            if simUsesStd {
                simFeatures = Tensor([batch, c], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
                simChunk = Tensor([chunk, c, hh, ww], .activations, layer: layer, label: "sim.conv chunk", ledger: ledger, zeroed: false)
            } else {
                simFeatures = Tensor([batch, c, hh, ww], .activations, layer: layer, label: "sim.conv", ledger: ledger, zeroed: false)
            }
        }
    }

    /// Pass 2: the summaries' rows `rows` from h (b, C, H, W) of those images (pre-dropout).
    func gather(h: Tensor, rows: Range<Int>) {
        if let pooled {
            if heads.pooling.pools {
                AvgPoolKernel.forward(x: h, into: pooled.rows(rows), geometry: heads.poolGeometry)
            } else {
                pooled.rows(rows).copy(from: h)
            }
        }
        if let weight = heads.simWeight, let workspace = heads.simWorkspace, let features = simFeatures {
            if let simChunk {
                let s = simChunk.rows(0..<rows.count)
                Conv2dKernel.forward(x: h, weight: weight.value, bias: nil, into: s, workspace: workspace)
                SpatialStdKernel.forward(x: s, into: features.rows(rows))
            } else {
                Conv2dKernel.forward(x: h, weight: weight.value, bias: nil, into: features.rows(rows), workspace: workspace)
            }
        }
    }

    /// The losses on the full-batch summaries, as `ConvHeads.apply` takes them; leaves the
    /// summaries' gradients for `backward` (and the pooled heads' weight gradients, which need
    /// nothing but the pooled h). The pooled h goes once its heads are done.
    func loss(labels: UnsafePointer<Int32>, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = heads.loss.weights(beta: beta)
        var pred = HeadResult(), sim = HeadResult()
        let layer = heads.layer
        if let p = pooled {
            let grad = Tensor(p.shape, .activationGrads, layer: layer, label: "pred.pooled.grad", ledger: ledger)
            heads.pooledHeads(p, into: grad, labels: labels, weights: w, pred: &pred, sim: &sim)
            pooledGrad = grad
            pooled = nil
        }
        if heads.simWeight != nil {
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: heads.classes, projection: nil,
                                                        layer: layer, ledger: ledger)
            // std: this reference goes, simFeatures stays (its backward reads it); s: dropped here.
            var features = simFeatures
            if !simUsesStd { simFeatures = nil }
            let (l, ds) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: w.sim, layer: layer, ledger: ledger)
            sim.loss = l
            simGrad = ds
        }
        return (pred, sim)
    }

    /// Passes 3 and 4: dh (b, C, H, W) += the heads' gradient for images `rows`, from h of those
    /// images; with `weightGradients` also the sim conv's weight gradient (+)= the chunk's
    /// share (overwritten by the chunk at row 0, accumulated by the others).
    func backward(h: Tensor, rows: Range<Int>, into dh: Tensor, weightGradients: Bool) {
        if let pooledGrad {
            let dp = pooledGrad.rows(rows)
            if heads.pooling.pools {
                AvgPoolKernel.backward(dy: dp, into: dh, geometry: heads.poolGeometry, accumulate: true)
            } else {
                let d = dh.pointer, g = dp.pointer
                for i in 0..<dh.count { d[i] += g[i] }
            }
        }
        if let weight = heads.simWeight, let workspace = heads.simWorkspace, let simGrad {
            let ds: Tensor
            if let simChunk, let std = simFeatures {
                // recompute s of the chunk, then dL/ds over it in place (the std backward reads
                // a plane's values before writing that plane's gradient)
                ds = simChunk.rows(0..<rows.count)
                Conv2dKernel.forward(x: h, weight: weight.value, bias: nil, into: ds, workspace: workspace)
                SpatialStdKernel.backward(ds: simGrad.rows(rows), x: ds, s: std.rows(rows), into: ds)
            } else {
                ds = simGrad.rows(rows).reshaped(h.shape)
            }
            if weightGradients {
                Conv2dKernel.backwardWeights(dy: ds, x: h, weightGrad: weight.makeGrad(), biasGrad: nil, workspace: workspace,
                                             accumulate: rows.lowerBound > 0)
            }
            Conv2dKernel.backwardData(dy: ds, weight: weight.value, into: dh, workspace: workspace, accumulate: true)
        }
    }
}
