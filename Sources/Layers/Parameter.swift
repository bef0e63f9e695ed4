import MemoryLedger
import Tensors
import Randomness

/// A trainable tensor with its gradient (allocated only while its owner updates) and its
/// optimizer state (allocated once, by the optimizer).
public final class Parameter {
    /// Checkpoint name, e.g. `blocks.0.linear.weight`.
    public let name: String
    public let value: Tensor
    public private(set) var grad: Tensor?
    /// Optimizer moments, in the optimizer's order (Adam: m, v; SGD: momentum).
    public var state: [OptimizerMoment] = []
    public let layer: Int

    public init(name: String, shape: [Int], category: Category, layer: Int, label: StaticString, ledger: Ledger) {
        self.name = name
        self.layer = layer
        value = Tensor(shape, category, layer: layer, label: label, ledger: ledger)
    }

    public var count: Int { value.count }
    public var shape: [Int] { value.shape }

    /// Allocates a gradient (booked as `gradients`) if there is none, and returns it. Its
    /// contents are undefined: every backward kernel overwrites its gradient unless asked to
    /// accumulate (which only chunked steps do, after a first overwriting chunk).
    @discardableResult
    public func makeGrad() -> Tensor {
        if let grad { return grad }
        let g = Tensor(value.shape, .gradients, layer: layer, label: "grad", ledger: value.storage.ledger, zeroed: false)
        grad = g
        return g
    }

    /// Frees the gradient.
    public func dropGrad() { grad = nil }

    /// Fills with uniform values in [-bound, bound).
    public func initUniform(bound: Float, rng: inout Randomness.Xoshiro256) {
        let p = value.pointer
        for i in 0..<value.count { p[i] = rng.uniform(-bound, bound) }
    }
}
