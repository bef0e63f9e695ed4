import MemoryLedger

/// One batch from a `BatchLoader`. Its buffers belong to the loader and are reused: the batch is
/// valid until the second `nextBatch()` after the one that returned it (the loader alternates
/// between two sets of buffers so the trainer may hold one batch while the next is assembled).
public struct Batch {
    /// (count, C, H, W) floats, normalised, NCHW; the buffer holds batchSize images, of which
    /// the first `count` are valid.
    public let images: TrackedBuffer<Float>
    /// `count` labels in 0..<classCount.
    public let labels: TrackedBuffer<Int32>
    /// Records in this batch (batchSize, or fewer for the last batch of an epoch).
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    public let epoch: Int
    /// Position in the epoch of the batch's first record.
    public let firstPosition: Int
    /// The loader that owns the buffers, kept alive with the batch (the buffers' ledger lives
    /// as long as the loader does).
    let owner: AnyObject

    /// Floats per image: C x H x W.
    public var imageElements: Int { channels * height * width }
}
