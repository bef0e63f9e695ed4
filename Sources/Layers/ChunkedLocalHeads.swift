import MemoryLedger
import Tensors

/// The local heads of a Linear block over a batch seen a chunk at a time (exact chunked local
/// steps, DESIGN.md section 3 item 2). Each head's loss reads the batch only through a
/// full-batch summary of h, gathered one chunk of rows at a time:
/// - pred: the logits (B, K); pred-bpf: the decoder's logits (B, 128);
/// - sim: the head's output s = h Ws^T (B, F); sim-bpf: h itself (B, F) (as large as h, but
///   one (B, F) matrix, not the block's whole working set).
/// `loss` turns every summary into its gradient; `backward` then sends a chunk's rows of those
/// gradients into dL/dh of the chunk (and, once per step, into the head weights' gradients).
/// The numbers equal `LocalHeads.apply` on the whole batch up to summation order.
final class ChunkedLocalHeads {
    let heads: LocalHeads
    let batch: Int
    private let ledger: Ledger
    /// pred logits (B, K), then dL/dlogits in place.
    private var predLogits: Tensor?
    /// pred-bpf decoder logits (B, 128), then their gradient in place.
    private var decoderLogits: Tensor?
    /// sim: the head output s (B, F) (sim-bpf: h), until the loss normalises it.
    private var simFeatures: Tensor?
    /// dL/ds (B, F), after the loss.
    private var simGrad: Tensor?

    init(_ heads: LocalHeads, batch: Int, ledger: Ledger) {
        self.heads = heads
        self.batch = batch
        self.ledger = ledger
        let layer = heads.layer
        if heads.predWeight != nil {
            predLogits = Tensor([batch, heads.classes], .activations, layer: layer, label: "pred.logits", ledger: ledger, zeroed: false)
        }
        if heads.decoderWeight != nil {
            decoderLogits = Tensor([batch, LocalHeads.projectionSize], .activations, layer: layer, label: "bpf.logits", ledger: ledger, zeroed: false)
        }
        if heads.loss.usesSim {
            simFeatures = Tensor([batch, heads.features], .activations, layer: layer,
                                 label: heads.simWeight == nil ? "sim-bpf.features" : "sim.features", ledger: ledger, zeroed: false)
        }
    }

    /// Pass 2: the summaries' rows `rows` from h of those rows (pre-dropout).
    // h: (b, F) for rows of the batch
    func gather(h: Tensor, rows: Range<Int>) {
        if let predLogits, let w = heads.predWeight, let b = heads.predBias {
            LinearKernel.forward(x: h, weight: w.value, bias: b.value, into: predLogits.rows(rows))
        }
        if let decoderLogits, let w = heads.decoderWeight, let b = heads.decoderBias {
            LinearKernel.forward(x: h, weight: w.value, bias: b.value, into: decoderLogits.rows(rows))
        }
        if let simFeatures {
            if let w = heads.simWeight {
                BLAS.gemm(h, w.value, into: simFeatures.rows(rows), transposeB: true)
            } else {
                simFeatures.rows(rows).copy(from: h)
            }
        }
    }

    /// The losses on the full-batch summaries; leaves their gradients in place of the summaries
    /// (and the head biases' gradients, which need nothing else). Temporaries as in
    /// `LocalHeads.apply`.
    func loss(labels: UnsafePointer<Int32>, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = heads.loss.weights(beta: beta)
        var pred = HeadResult(), sim = HeadResult()
        let layer = heads.layer, classes = heads.classes
        if let logits = predLogits, let bias = heads.predBias {
            let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: w.pred)
            pred = HeadResult(loss: w.pred * r.loss, correct: r.correct)
            LinearKernel.columnSums(logits, into: bias.makeGrad())
        }
        if let logits = decoderLogits, let bias = heads.decoderBias, let projection = heads.projection {
            let targets = SimilarityLoss.projectedLabels(labels, batch: batch, classes: classes, projection: projection,
                                                         layer: layer, ledger: ledger)
            let pp = targets.pointer
            for i in 0..<targets.count { pp[i] = pp[i] > 0 ? 1 : 0 }
            pred.loss = w.pred * BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: logits, scale: w.pred)
            withExtendedLifetime(targets) {}
            LinearKernel.columnSums(logits, into: bias.makeGrad())
        }
        if simFeatures != nil {
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: heads.projection,
                                                        layer: layer, ledger: ledger)
            // Drops the features once they are normalised.
            let (l, ds) = SimilarityLoss.lossAndGrad(features: &simFeatures, target: &target, scale: w.sim, layer: layer, ledger: ledger)
            sim.loss = l
            simGrad = ds
        }
        return (pred, sim)
    }

    /// Passes 3 and 4: dh (b, F) += the heads' gradient for rows `rows`, from h of those rows;
    /// with `weightGradients` also the head weights' gradients (+)= the chunk's share
    /// (overwritten by the chunk at row 0, accumulated by the others).
    func backward(h: Tensor, rows: Range<Int>, into dh: Tensor, weightGradients: Bool) {
        let first = rows.lowerBound == 0
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
        if let ds = simGrad?.rows(rows) {
            if let w = heads.simWeight {
                // dWs (+)= ds^T h; dh += ds Ws
                if weightGradients { BLAS.gemm(ds, h, into: w.makeGrad(), transposeA: true, beta: first ? 0 : 1) }
                BLAS.gemm(ds, w.value, into: dh, beta: 1)
            } else {
                let d = dh.pointer, g = ds.pointer
                for i in 0..<dh.count { d[i] += g[i] }
            }
        }
    }
}
