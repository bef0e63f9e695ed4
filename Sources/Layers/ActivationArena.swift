import MemoryLedger
import Tensors

/// One allocation, booked as `activations`, that holds two tensors at once: one placed at its
/// front, one at its back. A layer reads its input at one end and writes its output at the other;
/// the next layer's output then overwrites the dead input. Tensors from `tensor(_:at:)` are
/// views: they keep the allocation alive, and their contents last until the next tensor is
/// placed at the same end.
final class ActivationArena {
    enum End {
        case front, back
        var other: End { self == .front ? .back : .front }
    }

    let storage: TrackedBuffer<Float>

    init(floats: Int, ledger: Ledger) {
        storage = TrackedBuffer(count: floats, category: .activations, layer: nil, label: "activations (two-ended)", ledger: ledger)
    }

    /// A tensor of `shape` at `end`: the first elements of the allocation, or the last.
    func tensor(_ shape: [Int], at end: End) -> Tensor {
        let count = shape.reduce(1, *)
        precondition(count <= storage.count, "\(shape) does not fit an arena of \(storage.count) floats")
        return Tensor(storage: storage, offset: end == .front ? 0 : storage.count - count, shape: shape)
    }
}
