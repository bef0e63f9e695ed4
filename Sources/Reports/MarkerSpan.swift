/// The stretch of time between one ledger phase marker (`Ledger.enter`) and the next: what the
/// trainer was doing, and for which layer. Reports draw layer bands and trace slices from these.
public struct MarkerSpan: Equatable, Sendable, Codable {
    /// `Phase.description`.
    public var phase: String
    /// Layer index (nil: no layer).
    public var layer: Int?
    /// The marker's label.
    public var label: String
    /// Start and end, nanoseconds on the ledger's clock; `end >= start`.
    public var startNanos: UInt64
    public var endNanos: UInt64

    public init(phase: String, layer: Int?, label: String, startNanos: UInt64, endNanos: UInt64) {
        self.phase = phase
        self.layer = layer
        self.label = label
        self.startNanos = startNanos
        self.endNanos = endNanos
    }

    public var durationNanos: UInt64 { endNanos - startNanos }
}
