/// The profiles of the same model and batch in local and backprop modes (and optionally more,
/// such as backprop with checkpointing), with the headline derived from them.
///
/// A report of one run alone (`layerwise train --memory-report`) is a single-mode comparison
/// (`init(single:)`): `local` holds that run whatever its mode, `modes` lists it alone and the
/// headline has no ratios.
public struct MemoryComparison: Equatable, Sendable, Codable {
    public var local: ModeProfile
    public var backprop: ModeProfile
    /// Further modes, shown after the two above.
    public var others: [ModeProfile]
    /// Derived from `local` and `backprop` when the comparison is made.
    public var headline: Headline
    /// True for a report of one run (`init(single:)`); nil or false for a comparison. Optional
    /// so that documents written before it still read.
    public var singleMode: Bool?
    /// True for the stages of one pipelined run (`init(stages:)`): one lane per stage, no
    /// local/backprop ratio. Optional so that documents written before it still read.
    public var stages: Bool?

    public init(local: ModeProfile, backprop: ModeProfile, others: [ModeProfile] = []) {
        self.local = local
        self.backprop = backprop
        self.others = others
        self.headline = Headline(local: local, backprop: backprop)
    }

    /// One run alone: `profile` is `local` and `backprop` both; only `modes` and the reports
    /// know it is one.
    public init(single profile: ModeProfile) {
        local = profile
        backprop = profile
        others = []
        singleMode = true
        headline = Headline(local: profile, backprop: profile)
        headline.peakRatio = nil
        headline.activationRatio = nil
    }

    /// The stages of one pipelined run (`layerwise train --stages S --memory-report DIR`), in
    /// order: each its own process and ledger, shown as one mode each.
    public init(stages profiles: [ModeProfile]) {
        precondition(profiles.count >= 2, "a pipelined run has at least two stages")
        local = profiles[0]
        backprop = profiles[1]
        others = Array(profiles.dropFirst(2))
        stages = true
        headline = Headline(local: profiles[0], backprop: profiles[1])
        headline.peakRatio = nil
        headline.activationRatio = nil
    }

    public var isSingleMode: Bool { singleMode == true }
    public var isStaged: Bool { stages == true }

    /// All modes in report order: local, backprop, then the others (the one run of a
    /// single-mode report).
    public var modes: [ModeProfile] { isSingleMode ? [local] : [local, backprop] + others }
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
