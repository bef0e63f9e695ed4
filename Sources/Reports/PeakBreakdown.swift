import MemoryLedger

/// Live bytes at one instant (usually the ledger's high-water mark), broken down by category and
/// by layer, with the phase and layer the trainer was in at that instant.
public struct PeakBreakdown: Equatable, Sendable, Codable {
    /// Bytes held by one layer (`layer` nil: buffers that belong to no layer).
    public struct LayerBytes: Equatable, Sendable, Codable {
        public var layer: Int?
        public var bytes: Int
        public init(layer: Int?, bytes: Int) { self.layer = layer; self.bytes = bytes }
    }

    public var total: Int
    public var byCategory: CategoryBytes
    /// Layers holding bytes at that instant, "no layer" first, then by index.
    public var byLayer: [LayerBytes]
    /// `Phase.description` of the phase that was current.
    public var phase: String
    /// Layer that was current (nil: none).
    public var layer: Int?

    public init(total: Int, byCategory: CategoryBytes, byLayer: [LayerBytes], phase: String, layer: Int?) {
        self.total = total
        self.byCategory = byCategory
        self.byLayer = byLayer
        self.phase = phase
        self.layer = layer
    }

    /// Copies a ledger snapshot (`Ledger.peak()` or `Ledger.current()`).
    public init(_ snapshot: LedgerSnapshot) {
        self.init(total: snapshot.total,
                  byCategory: CategoryBytes(snapshot.byCategory),
                  byLayer: snapshot.layers.map { LayerBytes(layer: $0.layer, bytes: $0.bytes) },
                  phase: snapshot.phase.description,
                  layer: snapshot.layer < 0 ? nil : snapshot.layer)
    }
}
