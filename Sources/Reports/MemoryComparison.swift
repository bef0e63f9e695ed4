/// The profiles of the same model and batch in local and backprop modes (and optionally more,
/// such as backprop with checkpointing), with the headline derived from them.
public struct MemoryComparison: Equatable, Sendable, Codable {
    public var local: ModeProfile
    public var backprop: ModeProfile
    /// Further modes, shown after the two above.
    public var others: [ModeProfile]
    /// Derived from `local` and `backprop` when the comparison is made.
    public var headline: Headline

    public init(local: ModeProfile, backprop: ModeProfile, others: [ModeProfile] = []) {
        self.local = local
        self.backprop = backprop
        self.others = others
        self.headline = Headline(local: local, backprop: backprop)
    }

    /// All modes in report order: local, backprop, then the others.
    public var modes: [ModeProfile] { [local, backprop] + others }
}

/// The numbers the report leads with.
public struct Headline: Equatable, Sendable, Codable {
    /// Backprop's ledger peak over local's (all categories). Nil when local's peak is 0.
    public var peakRatio: Double?
    /// Backprop's activation peak over local's. Nil when local's is 0.
    public var activationRatio: Double?
    public var localPeak: Int
    public var backpropPeak: Int
    public var localActivationPeak: Int
    public var backpropActivationPeak: Int

    public init(local: ModeProfile, backprop: ModeProfile) {
        localPeak = local.peak.total
        backpropPeak = backprop.peak.total
        localActivationPeak = local.activationPeak
        backpropActivationPeak = backprop.activationPeak
        peakRatio = Headline.ratio(backpropPeak, localPeak)
        activationRatio = Headline.ratio(backpropActivationPeak, localActivationPeak)
    }

    static func ratio(_ numerator: Int, _ denominator: Int) -> Double? {
        denominator > 0 ? Double(numerator) / Double(denominator) : nil
    }
}
