import MemoryLedger
import Tensors

/// The pieces of the sim losses shared by Linear and conv heads: the target S(Y) (or S(Y P^T)
/// for the backprop-free variants) and L = scale * mean((S(features) - target)^2) with its
/// gradient. Every temporary is booked to `layer`.
enum SimilarityLoss {
    /// clamp(S(onehot(labels))) (B, B): +1 for the same class, -1/(K-1) otherwise; with a
    /// projection P (D, K), clamp(S(onehot P^T)).
    static func target(labels: UnsafePointer<Int32>, batch: Int, classes: Int, projection: Tensor?,
                       layer: Int, ledger: Ledger) -> Tensor {
        let y: Tensor
        if let projection {
            y = projectedLabels(labels, batch: batch, classes: classes, projection: projection, layer: layer, ledger: ledger)
        } else {
            y = Tensor([batch, classes], .lossTemp, layer: layer, label: "sim.onehot", ledger: ledger)
            for r in 0..<batch { y.pointer[r * classes + Int(labels[r])] = 1 }
        }
        let u = Tensor(y.shape, .lossTemp, layer: layer, label: "sim.target.normalized", ledger: ledger, zeroed: false)
        let norms = Tensor([batch], .lossTemp, layer: layer, label: "sim.target.norms", ledger: ledger, zeroed: false)
        let t = Tensor([batch, batch], .lossTemp, layer: layer, label: "sim.target", ledger: ledger, zeroed: false)
        Similarity.forward(y, normalized: u, norms: norms, raw: t)
        Similarity.clamp(t, into: t)
        return t
    }

    /// Y P^T (B, D) for one-hot Y: row r is column labels[r] of P (D, K).
    static func projectedLabels(_ labels: UnsafePointer<Int32>, batch: Int, classes: Int, projection: Tensor,
                                layer: Int, ledger: Ledger) -> Tensor {
        let size = projection.rowCount
        let y = Tensor([batch, size], .lossTemp, layer: layer, label: "bpf.target", ledger: ledger, zeroed: false)
        for r in 0..<batch {
            let c = Int(labels[r])
            for j in 0..<size { y.pointer[r * size + j] = projection.pointer[j * classes + c] }
        }
        return y
    }

    /// The sim loss of `features` (B, ...) flattened to (B, D) against `target`, and
    /// dL/d(features) as (B, D).
    ///
    /// Takes the caller's references to `features` and `target` and drops them at their last
    /// use: `features` once it is normalised (the backward reads only the normalised rows and
    /// their norms), `target` once the loss is taken. A tensor the caller still holds elsewhere
    /// (h itself, the std that its backward reads) stays alive; one held only here (the Linear
    /// sim head's output) is freed before the gradient is allocated, which `MemoryPlanner`
    /// mirrors. The normalised rows, norms and B x B matrix are freed when this returns.
    static func lossAndGrad(features: inout Tensor?, target: inout Tensor?, scale: Float, layer: Int,
                            ledger: Ledger) -> (loss: Float, grad: Tensor) {
        let batch = features!.rowCount
        let shape = [batch, features!.count / batch]
        let u = Tensor(shape, .activations, layer: layer, label: "sim.normalized", ledger: ledger, zeroed: false)
        let norms = Tensor([batch], .activations, layer: layer, label: "sim.norms", ledger: ledger, zeroed: false)
        let r = Tensor([batch, batch], .lossTemp, layer: layer, label: "sim.matrix", ledger: ledger, zeroed: false)
        do {
            let flat = features!.reshaped(shape)  // a view: it shares (and holds) the storage
            Similarity.forward(flat, normalized: u, norms: norms, raw: r)
        }
        features = nil
        let loss = Similarity.meanSquaredError(raw: r, target: target!, grad: r, scale: scale)
        target = nil
        let ds = Tensor(shape, .activationGrads, layer: layer, label: "sim.grad", ledger: ledger, zeroed: false)
        Similarity.backward(rawGrad: r, normalized: u, norms: norms, inputGrad: ds)
        withExtendedLifetime((u, norms, r)) {}
        return (loss, ds)
    }
}
