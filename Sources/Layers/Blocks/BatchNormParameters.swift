import MemoryLedger
import Tensors

/// A block's BatchNorm state, built the same way by Linear and conv blocks: gamma 1, beta 0
/// (trained, counted in #params), running mean 0 and running variance 1 (booked as weights).
enum BatchNormParameters {
    static func make(layer: Int, channels: Int, ledger: Ledger)
        -> (weight: Parameter, bias: Parameter, runningMean: Tensor, runningVar: Tensor) {
        let weight = Parameter(name: "blocks.\(layer).bn.weight", shape: [channels], category: .weights, layer: layer, label: "bn.weight", ledger: ledger)
        weight.value.fill(1)
        let bias = Parameter(name: "blocks.\(layer).bn.bias", shape: [channels], category: .weights, layer: layer, label: "bn.bias", ledger: ledger)
        let runningMean = Tensor([channels], .weights, layer: layer, label: "bn.running_mean", ledger: ledger)
        let runningVar = Tensor([channels], .weights, layer: layer, label: "bn.running_var", ledger: ledger)
        runningVar.fill(1)
        return (weight, bias, runningMean, runningVar)
    }
}
