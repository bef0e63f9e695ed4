/// One pass of `Conv2dKernel`.
public enum ConvPass: String, CaseIterable, Sendable {
    case forward
    case backwardData
    case backwardWeights
}
