import MemoryLedger
import Tensors

/// The local heads of a block over a batch seen a chunk at a time (exact chunked local steps,
/// DESIGN.md section 3 item 2). Each head's loss reads the batch only through a full-batch
/// summary of h, gathered one chunk of examples at a time:
/// - pred and pred-bpf: on feature maps, the decoder features (the pooled h, at most
///   dimInDecoder values an image), from which the heads run on the whole batch as in
///   `LocalHeads.apply`; on a Linear block the decoder features are h itself (B, F), so the
///   summary is the decoder's output instead, the logits (B, K) or (B, 128), and the decoder's
///   weight gradient is summed chunk by chunk;
/// - sim-bpf: the decoder features (on a Linear block h itself, one (B, F) matrix, not the
///   block's whole working set);
/// - sim: the square map's output s reduced to its per-channel spatial std (B, C), or s itself
///   flattened when the std step does not apply (a Linear block's (B, F)).
/// `loss` takes the losses on the summaries and leaves their gradients; `backward` sends a
/// chunk's rows of those gradients into dL/dh of the chunk, recomputing the sim map's output of
/// the chunk where only its std was kept. The numbers equal `LocalHeads.apply` on the whole
/// batch up to summation order.
final class ChunkedHeads<Map: HiddenMap> {
    let heads: LocalHeads<Map>
    let batch: Int
    private let ledger: Ledger
    /// Feature maps: the decoder features (B, C, h', w') until the loss; then their gradient.
    private var pooled: Tensor?
    private var pooledGrad: Tensor?
    /// Linear blocks: pred logits (B, K), then dL/dlogits in place.
    private var predLogits: Tensor?
    /// Linear blocks: pred-bpf decoder logits (B, 128), then their gradient in place.
    private var decoderLogits: Tensor?
    /// sim: std (B, C) of s, kept for its backward; or s flattened (sim-bpf on a Linear block: h)
    /// until the loss normalises it.
    private var simFeatures: Tensor?
    /// dL/d(simFeatures), after the loss.
    private var simGrad: Tensor?
    /// One chunk of s (chunk, C, H, W) when only its std is kept; its backward overwrites it with dL/ds.
    private var simChunk: Tensor?
    private var simUsesStd: Bool {
        LocalHeads<Map>.usesStd(channels: heads.output.channels, height: heads.output.height, width: heads.output.width)
    }

    init(_ heads: LocalHeads<Map>, batch: Int, chunk: Int, ledger: Ledger) {
        self.heads = heads
        self.batch = batch
        self.ledger = ledger
        let layer = heads.layer
        if Map.isSpatial {
            if heads.readsDecoderFeatures {
                let shape = heads.pooling.pools ? heads.pooling.geometry.outputShape(batch: batch) : heads.hShape(batch: batch)
                pooled = Tensor(shape, .activations, layer: layer, label: "pred.pooled", ledger: ledger, zeroed: false)
            }
        } else {
            if heads.predWeight != nil {
                predLogits = Tensor([batch, heads.classes], .activations, layer: layer, label: "pred.logits", ledger: ledger, zeroed: false)
            }
            if heads.decoderWeight != nil {
                decoderLogits = Tensor([batch, LossKind.projectionSize], .activations, layer: layer, label: "bpf.logits",
                                       ledger: ledger, zeroed: false)
            }
            if heads.loss.usesSim && heads.loss.isBackpropFree {
                simFeatures = Tensor(heads.hShape(batch: batch), .activations, layer: layer, label: "sim-bpf.features",
                                     ledger: ledger, zeroed: false)
            }
        }
        if let map = heads.simMap {
            if simUsesStd {
                simFeatures = Tensor([batch, heads.output.channels], .activations, layer: layer, label: "sim.std", ledger: ledger, zeroed: false)
                simChunk = Tensor(map.outputShape(batch: chunk), .activations, layer: layer, label: "sim.conv chunk", ledger: ledger, zeroed: false)
            } else {
                simFeatures = Tensor(map.outputShape(batch: batch), .activations, layer: layer, label: "sim.features", ledger: ledger, zeroed: false)
            }
        }
    }

    /// Pass 2: the summaries' rows `rows` from h of those examples (pre-dropout).
    // h: (b, C, H, W) or (b, F) for rows of the batch
    func gather(h: Tensor, rows: Range<Int>) {
        if let pooled {
            if heads.pooling.pools {
                AvgPoolKernel.forward(x: h, into: pooled.rows(rows), geometry: heads.pooling.geometry)
            } else {
                pooled.rows(rows).copy(from: h)
            }
        }
        if let predLogits, let w = heads.predWeight, let b = heads.predBias {
            LinearKernel.forward(x: h, weight: w.value, bias: b.value, into: predLogits.rows(rows))
        }
        if let decoderLogits, let w = heads.decoderWeight, let b = heads.decoderBias {
            LinearKernel.forward(x: h, weight: w.value, bias: b.value, into: decoderLogits.rows(rows))
        }
        if let features = simFeatures {
            if let weight = heads.simWeight, let map = heads.simMap {
                if let simChunk {
                    let s = simChunk.rows(0..<rows.count)
                    map.forward(x: h, weight: weight.value, bias: nil, into: s)
                    SpatialStdKernel.forward(x: s, into: features.rows(rows))
                } else {
                    map.forward(x: h, weight: weight.value, bias: nil, into: features.rows(rows))
                }
            } else {
                features.rows(rows).copy(from: h)
            }
        }
    }

    /// The losses on the full-batch summaries, as `LocalHeads.apply` takes them; leaves the
    /// summaries' gradients for `backward` (and the gradients that need nothing but a summary:
    /// the decoders' on feature maps, the decoder biases' on Linear blocks). Temporaries as in
    /// `LocalHeads.apply`; the decoder features go once their heads are done.
    func loss(labels: UnsafePointer<Int32>, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = heads.loss.weights(beta: beta)
        var pred = HeadResult(), sim = HeadResult()
        let layer = heads.layer, classes = heads.classes
        if let p = pooled {
            let grad = Tensor(p.shape, .activationGrads, layer: layer, label: "pred.pooled.grad", ledger: ledger)
            heads.decoderHeads(p, into: grad, labels: labels, weights: w, pred: &pred, sim: &sim)
            pooledGrad = grad
            pooled = nil
        }
        if let logits = predLogits, let bias = heads.predBias {
            let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: w.pred)
            pred = HeadResult(loss: w.pred * r.loss, correct: r.correct)
            LinearKernel.columnSums(logits, into: bias.makeGrad())
        }
        if let logits = decoderLogits, let bias = heads.decoderBias, let projection = heads.projection {
            pred.loss = heads.decoderLoss(logits, labels: labels, projection: projection, scale: w.pred)
            LinearKernel.columnSums(logits, into: bias.makeGrad())
        }
        if simFeatures != nil {
            // S(Y), or S(P onehot) for sim-bpf
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: heads.projection,
                                                        layer: layer, ledger: ledger)
            // std: this reference goes, simFeatures stays (its backward reads it); flattened
            // features: dropped once normalised.
            var features = simFeatures
            if simChunk == nil { simFeatures = nil }
            let (l, ds) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: w.sim, layer: layer, ledger: ledger)
            sim.loss = l
            simGrad = ds
        }
        return (pred, sim)
    }

    /// Passes 3 and 4: dh (b, ...) += the heads' gradient for examples `rows`, from h of those
    /// examples; with `weightGradients` also the weight gradients that need h (+)= the chunk's
    /// share (overwritten by the chunk at row 0, accumulated by the others).
    func backward(h: Tensor, rows: Range<Int>, into dh: Tensor, weightGradients: Bool) {
        let first = rows.lowerBound == 0
        if let pooledGrad {
            let dp = pooledGrad.rows(rows)
            if heads.pooling.pools {
                AvgPoolKernel.backward(dy: dp, into: dh, geometry: heads.pooling.geometry, accumulate: true)
            } else {
                let d = dh.pointer, g = dp.pointer
                for i in 0..<dh.count { d[i] += g[i] }
            }
        }
        if let logits = predLogits?.rows(rows), let w = heads.predWeight {
            // dWp (+)= dlogits^T h; dh += dlogits Wp
            if weightGradients { BLAS.gemm(logits, h, into: w.makeGrad(), transposeA: true, beta: first ? 0 : 1) }
            BLAS.gemm(logits, w.value, into: dh, beta: 1)
        }
        if let logits = decoderLogits?.rows(rows), let w = heads.decoderWeight, let feedback = heads.feedback {
            // feedback alignment: dh += dlogits B, not dlogits Wd
            if weightGradients { BLAS.gemm(logits, h, into: w.makeGrad(), transposeA: true, beta: first ? 0 : 1) }
            BLAS.gemm(logits, feedback, into: dh, beta: 1)
        }
        guard let simGrad else { return }
        guard let weight = heads.simWeight, let map = heads.simMap else {
            // sim-bpf on a Linear block: dL/dh is the gradient of the summary itself
            let d = dh.pointer, g = simGrad.rows(rows).pointer
            for i in 0..<dh.count { d[i] += g[i] }
            return
        }
        let ds: Tensor
        if let simChunk, let std = simFeatures {
            // recompute s of the chunk, then dL/ds over it in place (the std backward reads
            // a plane's values before writing that plane's gradient)
            ds = simChunk.rows(0..<rows.count)
            map.forward(x: h, weight: weight.value, bias: nil, into: ds)
            SpatialStdKernel.backward(ds: simGrad.rows(rows), x: ds, s: std.rows(rows), into: ds)
        } else {
            ds = simGrad.rows(rows).reshaped(map.outputShape(batch: rows.count))
        }
        // dWs (+)= from ds and h; dh += map^T(ds)
        if weightGradients {
            map.backwardWeights(dy: ds, x: h, weightGrad: weight.makeGrad(), biasGrad: nil, accumulate: !first)
        }
        map.backwardData(dy: ds, weight: weight.value, into: dh, accumulate: true)
    }
}
