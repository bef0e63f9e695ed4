/// One line of `metrics.jsonl`: what an epoch did.
public struct EpochMetrics: Codable, Sendable, Equatable {
    public struct LayerMetrics: Codable, Sendable, Equatable {
        public var layer: Int
        /// Mean local loss over the epoch (pred + sim terms as weighted in training).
        public var loss: Double
        public var predLoss: Double
        public var simLoss: Double
        /// Local pred-head training error in percent (nil when the head does not classify).
        public var error: Double?
    }

    public var epoch: Int
    public var lr: Float
    public var trainLoss: Double
    /// Training error of the output layer, percent (with dropout and augmentation on).
    public var trainError: Double
    public var testError: Double?
    public var layers: [LayerMetrics]
    public var seconds: Double
    public var samplesPerSecond: Double
    /// Ledger peak bytes by category during the epoch, and the total.
    public var ledgerPeak: [String: Int]
    public var ledgerPeakTotal: Int
    public var peakRSS: Int
    public var steps: Int
}
