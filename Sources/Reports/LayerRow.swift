/// One row of the per-layer table. The trainer fills it: only it knows the layer's shapes,
/// parameters and the analytic working set; the ledger supplies the measured figures.
public struct LayerRow: Equatable, Sendable, Codable {
    /// Layer index as booked in the ledger.
    public var index: Int
    /// Short description, e.g. "conv 128 3x3" or "linear 1024".
    public var name: String
    /// Trainable parameters of the block itself (what the paper counts).
    public var params: Int
    /// Parameters of the block's local heads (0 in backprop mode).
    public var headParams: Int
    /// Optimizer state bytes for the block and its heads.
    public var optimizerStateBytes: Int
    /// Analytic working set W_k from shapes, bytes (nil when not computed for this mode).
    public var workingSetBytes: Int?
    /// Highest live bytes booked to this layer while it was running, bytes.
    public var measuredPeakBytes: Int?
    /// Bytes still live for this layer right after its update (the hand-off, in local mode).
    public var survivingBytes: Int?

    public init(index: Int, name: String, params: Int, headParams: Int = 0, optimizerStateBytes: Int = 0,
                workingSetBytes: Int? = nil, measuredPeakBytes: Int? = nil, survivingBytes: Int? = nil) {
        self.index = index
        self.name = name
        self.params = params
        self.headParams = headParams
        self.optimizerStateBytes = optimizerStateBytes
        self.workingSetBytes = workingSetBytes
        self.measuredPeakBytes = measuredPeakBytes
        self.survivingBytes = survivingBytes
    }
}
