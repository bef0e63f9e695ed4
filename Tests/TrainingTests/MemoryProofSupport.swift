import Layers
import MemoryLedger
import Randomness
import Tensors
@testable import Training

/// Small models on fresh ledgers, so every booked byte is the test's own.
enum ProofModel {
    static let batch = 8, classes = 4, inputs = 12, hidden = 16
    static let labels: [Int32] = (0..<batch).map { Int32($0 % classes) }

    static func spec(_ loss: LossKind, layers: Int = 3, hidden: Int = hidden, inputs: Int = inputs) -> ModelSpec {
        var s = ModelSpec()
        s.inputShape = [inputs, 1, 1]
        s.classes = classes
        s.numLayers = layers
        s.numHidden = hidden
        s.loss = loss
        s.beta = loss.defaultBeta
        s.dropout = 0.1
        s.nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity)!
        return s
    }

    /// A network on its own ledger and a batch booked as `input` on it.
    static func make(_ spec: ModelSpec, batch: Int = batch, seed: UInt64 = 5) -> (network: Network, images: Tensor, ledger: Ledger) {
        let ledger = Ledger(eventCapacity: 1 << 14)
        let network = Network(spec: spec, seed: seed, ledger: ledger)
        let images = Tensor([batch] + spec.inputShape, .input, label: "batch", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: seed)
        for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 1) }
        return (network, images, ledger)
    }

    static func labels(_ batch: Int) -> [Int32] { (0..<batch).map { Int32($0 % classes) } }

    /// Runs `steps` training steps and returns the ledger's peak over them.
    static func peak(_ network: Network, _ images: Tensor, steps: Int = 2) -> LedgerSnapshot {
        let labels = labels(images.rowCount)
        for step in 0..<steps {
            _ = labels.withUnsafeBufferPointer { network.trainStep(images: images, labels: $0.baseAddress!, lr: 1e-3, step: step) }
        }
        return network.ledger.peak()
    }

    static let transient: [Category] = [.activations, .activationGrads, .lossTemp, .gradients, .workspace]
}
