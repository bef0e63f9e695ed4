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

/// The local heads of one hidden block of width `features` (DESIGN.md section 2, Linear blocks):
/// pred (Linear -> classes, cross-entropy), sim (learned square Linear, similarity matching),
/// and the backprop-free variants (fixed label projection P, feedback-alignment decoder).
public final class LocalHeads {
    public let loss: LossKind
    public let features: Int
    public let classes: Int
    public let layer: Int
    /// Width of the random label projection of the -bpf variants.
    public static let projectionSize = 128

    // pred: Linear(features -> classes), weight zero, bias default init.
    public let predWeight: Parameter?
    public let predBias: Parameter?
    // sim: Linear(features -> features), no bias.
    public let simWeight: Parameter?
    // bpf: decoder Linear(features -> 128), weight zero; fixed feedback matrix B (128, features);
    // fixed label projection P (128, classes).
    public let decoderWeight: Parameter?
    public let decoderBias: Parameter?
    public let feedback: Tensor?
    public let projection: Tensor?
    private let ledger: Ledger

    public init(loss: LossKind, features: Int, classes: Int, layer: Int, rng: inout Xoshiro256, ledger: Ledger) {
        self.loss = loss
        self.features = features
        self.classes = classes
        self.layer = layer
        self.ledger = ledger
        let prefix = "blocks.\(layer)"
        let bound = 1 / Float(features).squareRoot()
        if loss.usesPred && !loss.isBackpropFree {
            (predWeight, predBias) = HeadParameters.pred(layer: layer, features: features, classes: classes, rng: &rng, ledger: ledger)
        } else {
            predWeight = nil; predBias = nil
        }
        if loss.usesSim && !loss.isBackpropFree {
            let w = Parameter(name: "\(prefix).sim.weight", shape: [features, features], category: .headWeights, layer: layer, label: "sim.weight", ledger: ledger)
            w.initUniform(bound: bound, rng: &rng)
            simWeight = w
        } else {
            simWeight = nil
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
    public var parameters: [Parameter] {
        [predWeight, predBias, simWeight, decoderWeight, decoderBias].compactMap { $0 }
    }

    /// Fixed (untrained) head tensors, saved in checkpoints so a resumed run uses the same ones.
    public var fixedTensors: [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = []
        if let projection { out.append(("blocks.\(layer).bpf.projection", projection)) }
        if let feedback { out.append(("blocks.\(layer).bpf.feedback", feedback)) }
        return out
    }

    /// Computes the local loss on `h` (B, features) (pre-dropout), accumulates dL/dh into `dh`
    /// and leaves the head parameters' gradients in place for the block's optimizer step.
    ///
    /// Every temporary is freed at a fixed point, the same in debug and release builds: each
    /// lives in a `do` scope that ends with its last use, or in an optional that is set to nil
    /// there. The order (which `MemoryPlanner` mirrors): pred logits with the pred gradients,
    /// freed after dh is updated; the sim target (its one-hot and normalisation scratch freed as
    /// soon as it is built); the sim head output, freed once normalised; the B x B matrix and
    /// the target, freed once the gradient is through; the sim gradient, freed after dh.
    public func apply(h: Tensor, labels: UnsafePointer<Int32>, dh: Tensor, beta: Float) -> (pred: HeadResult, sim: HeadResult) {
        let w = loss.weights(beta: beta)
        var pred = HeadResult(), sim = HeadResult()
        let batch = h.rowCount
        if let predWeight, let predBias {
            // logits (B, K) = h Wp^T + bp; CE; dWp = dlogits^T h; dh += dlogits Wp
            let logits = Tensor([batch, classes], .activations, layer: layer, label: "pred.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: h, weight: predWeight.value, bias: predBias.value, into: logits)
            let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: w.pred)
            // CrossEntropy returns the unscaled loss (its gradient is scaled); the sim path
            // reports the scaled one, so weight this one the same way.
            pred = HeadResult(loss: w.pred * r.loss, correct: r.correct)
            LinearKernel.backward(dy: logits, x: h, weight: predWeight.value, weightGrad: predWeight.makeGrad(),
                                  biasGrad: predBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, predWeight.value, into: dh, beta: 1)
            withExtendedLifetime(logits) {}
        }
        if let decoderWeight, let decoderBias, let feedback, let projection {
            // Feedback alignment: logits (B, 128) = h Wd^T + bd against (onehot P^T > 0);
            // the gradient reaches h through the fixed B, not Wd^T.
            let logits = Tensor([batch, LocalHeads.projectionSize], .activations, layer: layer, label: "bpf.logits", ledger: ledger, zeroed: false)
            LinearKernel.forward(x: h, weight: decoderWeight.value, bias: decoderBias.value, into: logits)
            do {
                let targets = SimilarityLoss.projectedLabels(labels, batch: batch, classes: classes, projection: projection,
                                                             layer: layer, ledger: ledger)
                let pp = targets.pointer
                for i in 0..<targets.count { pp[i] = pp[i] > 0 ? 1 : 0 }
                pred.loss = w.pred * BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: logits, scale: w.pred)
                withExtendedLifetime(targets) {}
            }
            LinearKernel.backward(dy: logits, x: h, weight: decoderWeight.value, weightGrad: decoderWeight.makeGrad(),
                                  biasGrad: decoderBias.makeGrad(), inputGrad: nil)
            BLAS.gemm(logits, feedback, into: dh, beta: 1)
            withExtendedLifetime(logits) {}
        }
        if loss.usesSim {
            // S(Y) (B, B), or S(Y P^T) for sim-bpf: the one-hot (or projected) labels and the
            // normalisation scratch are freed inside, once the target is built.
            var target: Tensor? = SimilarityLoss.target(labels: labels, batch: batch, classes: classes, projection: projection,
                                                        layer: layer, ledger: ledger)
            if let simWeight {
                // s (B, F) = h Ws^T; L = mse(S(s), S(Y)); dWs = ds^T h; dh += ds Ws
                // s is held only here, so lossAndGrad frees it once it is normalised.
                var s: Tensor? = Tensor([batch, features], .activations, layer: layer, label: "sim.features", ledger: ledger, zeroed: false)
                BLAS.gemm(h, simWeight.value, into: s!, transposeB: true)
                let (l, ds) = SimilarityLoss.lossAndGrad(features: &s, target: &target, scale: w.sim, layer: layer, ledger: ledger)
                sim.loss = l
                BLAS.gemm(ds, h, into: simWeight.makeGrad(), transposeA: true)
                BLAS.gemm(ds, simWeight.value, into: dh, beta: 1)
                withExtendedLifetime(ds) {}
            } else {
                // sim-bpf on a Linear block: S(h) itself against S(P onehot). Dropping this
                // reference to h frees nothing: the block holds h.
                var features: Tensor? = h
                let (l, ds) = SimilarityLoss.lossAndGrad(features: &features, target: &target, scale: w.sim, layer: layer, ledger: ledger)
                sim.loss = l
                let d = dh.pointer, g = ds.pointer
                for i in 0..<dh.count { d[i] += g[i] }
                withExtendedLifetime(ds) {}
            }
        }
        return (pred, sim)
    }
}
