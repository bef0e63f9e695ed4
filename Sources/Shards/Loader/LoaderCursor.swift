/// Where training stands in the data: enough to replay the epoch plan to the same record
/// without reading the skipped blocks. Saved in checkpoints as a few hundred bytes of JSON.
///
/// `recordsConsumed` counts records handed out in batches this epoch; the trainer saves the
/// cursor after the step that used the last batch, so a resumed run continues with the batch
/// after it.
public struct LoaderCursor: Codable, Sendable, Equatable {
    /// Format version of the cursor itself.
    public var version: Int
    /// The source's fingerprint: a cursor only replays on the data it was made on.
    public var fingerprint: String
    public var seed: UInt64
    public var epoch: Int
    public var recordsConsumed: Int
    /// The plan also depends on these two; a mismatch would replay another order.
    public var shuffle: Bool
    public var poolBlocks: Int

    public static let currentVersion = 1

    public init(fingerprint: String, seed: UInt64, epoch: Int, recordsConsumed: Int, shuffle: Bool, poolBlocks: Int) {
        self.version = LoaderCursor.currentVersion
        self.fingerprint = fingerprint
        self.seed = seed
        self.epoch = epoch
        self.recordsConsumed = recordsConsumed
        self.shuffle = shuffle
        self.poolBlocks = poolBlocks
    }
}
