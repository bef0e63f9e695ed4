import Layers
import MemoryLedger
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

/// The connection of one pipeline stage to its neighbours (an MPI rank in `MessagePassing`):
/// it sends forward to the next stage and receives from the previous one.
public protocol StageLink: AnyObject {
    /// This stage, from 0.
    var stage: Int { get }
    /// Stages in the run.
    var stageCount: Int { get }
    /// Sends to the next stage without waiting for it to receive: returns once the send has
    /// started. `handOff` is kept alive (and booked) until its send completes.
    /// `settle` bounds how many are outstanding.
    func send(_ kind: StageMessageKind, step: Int, labels: UnsafeBufferPointer<Int32>,
              blockStats: [BlockStepStats], handOff: Tensor?) throws
    /// Waits for the previous stage's next message; a hand-off is received into a tensor
    /// booked under `.input`, layer `layer`, in `ledger`.
    func receive(layer: Int, ledger: Ledger) throws -> StageMessage
    /// Waits until at most `inFlight` sends are outstanding (releasing the hand-offs of those
    /// that completed): a stage calls it before each training step, so that it computes with
    /// at most `inFlight` earlier hand-offs still held.
    func settle() throws
    /// Waits until every send has completed (the pipeline is drained up to here).
    func drain() throws
    /// Waits until every stage has reached this point.
    func barrier() throws
    /// The largest of `value` over all stages (every stage gets it).
    func maximum(_ value: Double) throws -> Double
    /// Sends a stage may have outstanding while it computes (each keeping its hand-off).
    var inFlight: Int { get }
}

/// Which consecutive hidden blocks each stage trains: as even as the count allows, the first
/// stages taking one more when the blocks do not divide.
public struct StagePlacement: Sendable, Equatable {
    /// Per stage, its blocks.
    public let blocks: [Range<Int>]

    public init(blocks: Int, stages: Int) {
        precondition(stages >= 1 && stages <= blocks, "\(stages) stages for \(blocks) blocks")
        var ranges: [Range<Int>] = []
        var start = 0
        for s in 0..<stages {
            let n = blocks / stages + (s < blocks % stages ? 1 : 0)
            ranges.append(start..<start + n)
            start += n
        }
        self.blocks = ranges
    }

    /// Stages holding these consecutive, non-empty ranges of blocks, from block 0 on.
    public init(ranges: [Range<Int>]) {
        precondition(!ranges.isEmpty && ranges[0].lowerBound == 0 && ranges.allSatisfy { !$0.isEmpty }
                     && zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "stages \(ranges)")
        blocks = ranges
    }

    /// Stages of `counts[s]` consecutive blocks each.
    public init(counts: [Int]) {
        var start = 0
        self.init(ranges: counts.map { n in
            defer { start += n }
            return start..<start + n
        })
    }

    /// Blocks per stage.
    public var counts: [Int] { blocks.map(\.count) }

    public var stageCount: Int { blocks.count }

    /// One line per stage: `stage 2/3: blocks 3-4` (blocks counted from 1, as the CLI prints them).
    public var description: String {
        blocks.enumerated().map { s, r in
            "stage \(s + 1)/\(blocks.count): block\(r.count > 1 ? "s \(r.lowerBound + 1)-\(r.upperBound)" : " \(r.lowerBound + 1)")"
                + (s == blocks.count - 1 ? " and the output layer" : "")
        }.joined(separator: "; ")
    }
}
