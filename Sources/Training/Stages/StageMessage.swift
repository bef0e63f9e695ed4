import Layers
import Tensors

/// What travels from one pipeline stage to the next. Nothing travels backward.
public enum StageMessageKind: Int64, Sendable {
    /// A training batch: its labels, the local statistics of every block before the receiver,
    /// and the sender's hand-off.
    case trainBatch = 1
    /// The epoch's training batches are all sent.
    case epochEnd = 2
    /// An evaluation batch: labels and the sender's output (inference, no dropout).
    case evaluationBatch = 3
    /// The evaluation batches are all sent.
    case evaluationEnd = 4
}

/// One received message. `labels` stays valid until the next `receive`.
public struct StageMessage {
    public var kind: StageMessageKind
    /// The training step (trainBatch) or the evaluation batch's number.
    public var step: Int
    /// Examples in the batch (0 for the end markers).
    public var count: Int
    public var labels: UnsafeBufferPointer<Int32>
    /// Statistics of blocks 0 ..< blockStats.count on this batch (trainBatch only).
    public var blockStats: [BlockStepStats]
    /// The sender's hand-off, (count, ...), booked by the receiver's ledger (nil for the end markers).
    public var handOff: Tensor?

    public init(kind: StageMessageKind, step: Int, count: Int, labels: UnsafeBufferPointer<Int32>,
                blockStats: [BlockStepStats], handOff: Tensor?) {
        self.kind = kind
        self.step = step
        self.count = count
        self.labels = labels
        self.blockStats = blockStats
        self.handOff = handOff
    }
}
