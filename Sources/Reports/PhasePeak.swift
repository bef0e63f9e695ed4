import MemoryLedger

/// The highest live bytes seen while one phase was current: the total, and each category's own
/// maximum (these need not occur at the same instant, so they can sum to more than `total`).
public struct PhasePeak: Equatable, Sendable, Codable {
    /// `Phase.description`.
    public var phase: String
    public var total: Int
    public var byCategory: CategoryBytes

    public init(phase: String, total: Int, byCategory: CategoryBytes) {
        self.phase = phase
        self.total = total
        self.byCategory = byCategory
    }

    /// Reads the ledger's per-phase maxima for every phase, in `Phase` order.
    public static func all(from ledger: Ledger) -> [PhasePeak] {
        Phase.allCases.map { phase in
            var bytes = CategoryBytes()
            for category in Category.allCases { bytes[category] = ledger.phasePeak(phase, category) }
            return PhasePeak(phase: phase.description, total: ledger.phasePeak(phase), byCategory: bytes)
        }
    }
}
