/// One line of `metrics.jsonl`: what an epoch did.
public struct EpochMetrics: Codable, Sendable, Equatable {
    /// One hidden block's local figures over the epoch.
    public struct LayerMetrics: Codable, Sendable, Equatable {
        /// The block's index, from 0.
        public var layer: Int
        /// Mean local loss over the epoch (pred + sim terms as weighted in training).
        public var loss: Double
        /// Mean of the pred term, as weighted in training.
        public var predLoss: Double
        /// Mean of the sim term, as weighted in training.
        public var simLoss: Double
        /// Local pred-head training error in percent (nil when the head does not classify).
        public var error: Double?
    }

    /// The epoch, counting from 1.
    public var epoch: Int
    /// The learning rate the epoch used.
    public var lr: Float
    /// Mean cross-entropy of the output layer over the epoch's training batches.
    public var trainLoss: Double
    /// Training error of the output layer, percent (with dropout and augmentation on).
    public var trainError: Double
    /// Error on the test split in percent after the epoch (nil: no test split).
    public var testError: Double?
    /// Each hidden block's local losses and errors (empty in backprop mode).
    public var layers: [LayerMetrics]
    /// Training seconds of the epoch (evaluation not included).
    public var seconds: Double
    /// Training examples per second.
    public var samplesPerSecond: Double
    /// Ledger peak bytes by category during the epoch, and the total.
    public var ledgerPeak: [String: Int]
    /// The ledger's peak over the epoch, all categories together.
    public var ledgerPeakTotal: Int
    /// The process's peak resident set size in bytes.
    public var peakRSS: Int
    /// Training steps in the epoch.
    public var steps: Int
    /// Greedy schedule: the round the epoch belongs to, from 1 (nil: simultaneous).
    public var round: Int?
    /// Greedy schedule: false when the output layer did not train this epoch (every round but
    /// the last; `trainLoss` and `trainError` are then 0 and mean nothing); nil when it did.
    public var outputTrained: Bool?
}
