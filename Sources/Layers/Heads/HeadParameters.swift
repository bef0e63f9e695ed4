import MemoryLedger
import Randomness
import Tensors

/// The head tensors that Linear and conv blocks build the same way from the features their
/// decoders read (h itself, or the pooled h of a conv block): the pred classifier, the -bpf
/// label projection P, and the -bpf decoder with its fixed feedback matrix B. Draws from `rng`
/// in the order the callers' constructors always used, so initial weights are unchanged.
enum HeadParameters {
    /// pred: Linear(features -> classes), weight zero, bias uniform +-1/sqrt(features).
    static func pred(layer: Int, features: Int, classes: Int, rng: inout Xoshiro256, ledger: Ledger) -> (weight: Parameter, bias: Parameter) {
        let weight = Parameter(name: "blocks.\(layer).pred.weight", shape: [classes, features], category: .headWeights, layer: layer, label: "pred.weight", ledger: ledger)
        let bias = Parameter(name: "blocks.\(layer).pred.bias", shape: [classes], category: .headWeights, layer: layer, label: "pred.bias", ledger: ledger)
        bias.initUniform(bound: 1 / Float(features).squareRoot(), rng: &rng)
        return (weight, bias)
    }

    /// P (128, classes), uniform +-1/sqrt(classes), never trained.
    static func projection(layer: Int, classes: Int, rng: inout Xoshiro256, ledger: Ledger) -> Tensor {
        let p = Tensor([LossKind.projectionSize, classes], .headWeights, layer: layer, label: "bpf.projection", ledger: ledger)
        let bound = 1 / Float(classes).squareRoot()
        for i in 0..<p.count { p.pointer[i] = rng.uniform(-bound, bound) }
        return p
    }

    /// pred-bpf: decoder Linear(features -> 128) and the fixed feedback matrix B (128, features)
    /// that carries its gradient to h. The decoder's weight and bias both start at zero, as the
    /// paper's feedback-alignment layer does; B is uniform +-1/sqrt(features).
    static func decoder(layer: Int, features: Int, rng: inout Xoshiro256, ledger: Ledger) -> (weight: Parameter, bias: Parameter, feedback: Tensor) {
        let size = LossKind.projectionSize
        let bound = 1 / Float(features).squareRoot()
        let weight = Parameter(name: "blocks.\(layer).bpf.decoder.weight", shape: [size, features], category: .headWeights, layer: layer, label: "bpf.decoder.weight", ledger: ledger)
        let bias = Parameter(name: "blocks.\(layer).bpf.decoder.bias", shape: [size], category: .headWeights, layer: layer, label: "bpf.decoder.bias", ledger: ledger)
        let feedback = Tensor([size, features], .headWeights, layer: layer, label: "bpf.feedback", ledger: ledger)
        for i in 0..<feedback.count { feedback.pointer[i] = rng.uniform(-bound, bound) }
        return (weight, bias, feedback)
    }
}
