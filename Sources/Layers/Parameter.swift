import MemoryLedger
import Tensors
import Randomness

/// A trainable tensor with its gradient (allocated only while its owner updates) and its
/// optimizer state (allocated once, by the optimizer).
public final class Parameter {
    /// Checkpoint name, e.g. `blocks.0.linear.weight`.
    public let name: String
    /// The values; a dormant parameter's is empty until `wake()`.
    public private(set) var value: Tensor
    public private(set) var grad: Tensor?
    /// Optimizer moments, in the optimizer's order (Adam: m, v; SGD: momentum).
    public var state: [OptimizerMoment] = []
    public let layer: Int
    /// The parameter's shape (also while it is dormant).
    public let shape: [Int]
    private let label: StaticString

    /// - Parameter dormant: book nothing yet (an empty tensor) until `wake()` allocates the
    ///   values: the greedy schedule's blocks before their round.
    public init(name: String, shape: [Int], category: Category, layer: Int, label: StaticString, ledger: Ledger,
                dormant: Bool = false) {
        self.name = name
        self.layer = layer
        self.shape = shape
        self.label = label
        value = Tensor(dormant ? [0] : shape, category, layer: layer, label: label, ledger: ledger)
    }

    public var count: Int { shape.reduce(1, *) }
    /// Whether the values are not allocated yet (`init(dormant: true)` before `wake()`).
    public var isDormant: Bool { value.count != count }

    /// Allocates the values of a dormant parameter (contents undefined: the owner fills them).
    public func wake() {
        precondition(isDormant, "\(name) is awake already")
        value = Tensor(shape, value.category, layer: layer, label: label, ledger: value.storage.ledger, zeroed: false)
    }

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
