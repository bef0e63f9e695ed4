import MemoryLedger
import Randomness
import Tensors

/// The output Linear layer, trained with ordinary cross-entropy on the last hidden hand-off.
/// In local mode its weights start at zero and its loss is scaled by the loss kind's output
/// weight (1 - beta for predsim); predictions come from it alone.
public final class OutputLayer {
    public let index: Int
    public let inFeatures: Int
    public let classes: Int
    public let weight: Parameter
    public let bias: Parameter
    public var optimizer: Optimizer?
    private let ledger: Ledger
    private var savedInput: Tensor?

    public init(index: Int, inFeatures: Int, classes: Int, zeroWeights: Bool, rng: inout Xoshiro256, ledger: Ledger) {
        self.index = index
        self.inFeatures = inFeatures
        self.classes = classes
        self.ledger = ledger
        weight = Parameter(name: "output.weight", shape: [classes, inFeatures], category: .weights, layer: index, label: "output.weight", ledger: ledger)
        bias = Parameter(name: "output.bias", shape: [classes], category: .weights, layer: index, label: "output.bias", ledger: ledger)
        let bound = 1 / Float(inFeatures).squareRoot()
        if !zeroWeights { weight.initUniform(bound: bound, rng: &rng) }
        bias.initUniform(bound: bound, rng: &rng)
    }

    public var parameters: [Parameter] { [weight, bias] }

    public func logits(_ x: Tensor, phase: Phase) -> Tensor {
        ledger.enter(phase, layer: index, label: phase == .evaluate ? "evaluate" : "forward")
        let batch = x.rowCount
        let out = Tensor([batch, classes], .activations, layer: index, label: "output.logits", ledger: ledger, zeroed: false)
        LinearKernel.forward(x: x.reshaped([batch, inFeatures]), weight: weight.value, bias: bias.value, into: out)
        return out
    }

    /// Forward, loss and backward into the layer's own gradients. Returns the loss, the
    /// number correct and, if asked, dL/dx for the global backward.
    public func train(_ x: Tensor, labels: UnsafePointer<Int32>, scale: Float, wantInputGrad: Bool) -> (loss: Float, correct: Int, inputGrad: Tensor?) {
        let logits = logits(x, phase: .forward)
        ledger.enter(.localLoss, layer: index, label: "loss")
        let r = CrossEntropy.lossAndGrad(logits: logits, labels: labels, grad: logits, scale: scale)
        ledger.enter(.backward, layer: index, label: "backward")
        let batch = x.rowCount
        // Booked in this order (MemoryPlanner mirrors it): dx, then the gradients; the logits
        // are freed when this returns, after their last use here.
        let dx = wantInputGrad ? Tensor([batch, inFeatures], .activationGrads, layer: index, label: "dx", ledger: ledger, zeroed: false) : nil
        let weightGrad = weight.makeGrad(), biasGrad = bias.makeGrad()
        LinearKernel.backward(dy: logits, x: x.reshaped([batch, inFeatures]), weight: weight.value,
                              weightGrad: weightGrad, biasGrad: biasGrad, inputGrad: dx)
        withExtendedLifetime(logits) {}
        return (r.loss, r.correct, dx)
    }
}
