/// The training signal of the hidden blocks (DESIGN.md section 2).
public enum LossKind: String, Codable, Sendable, CaseIterable {
    case pred
    case sim
    case predsim
    case predBpf = "pred-bpf"
    case simBpf = "sim-bpf"
    case predsimBpf = "predsim-bpf"
    /// Ordinary global backprop: no heads, one optimizer for every parameter.
    case backprop

    /// Width of the fixed random label projection P of the -bpf losses (classes -> 128).
    public static let projectionSize = 128

    /// Every loss but backprop trains the blocks from local heads.
    public var isLocal: Bool { self != .backprop }
    /// Has a pred term (a local classifier head).
    public var usesPred: Bool { self == .pred || self == .predsim || self == .predBpf || self == .predsimBpf }
    /// Has a sim term (similarity matching).
    public var usesSim: Bool { self == .sim || self == .predsim || self == .simBpf || self == .predsimBpf }
    /// The -bpf variants: targets through a fixed random label projection.
    public var isBackpropFree: Bool { self == .predBpf || self == .simBpf || self == .predsimBpf }
    /// Losses that mix pred and sim with beta (and scale the output layer's loss by 1 - beta).
    public var mixes: Bool { self == .predsim || self == .predsimBpf }

    /// The reference recipes' beta: 0.99 for predsim, 0.01 for predsim-bpf.
    public var defaultBeta: Float { self == .predsimBpf ? 0.01 : 0.99 }

    /// LeakyReLU for losses with a sim term, ReLU otherwise (the reference's choice).
    public var defaultNonlinearity: String { usesSim ? "leakyrelu" : "relu" }

    /// Weight of the pred term, the sim term and the output layer's loss.
    public func weights(beta: Float) -> (pred: Float, sim: Float, output: Float) {
        switch self {
        case .pred, .predBpf: return (1, 0, 1)
        case .sim, .simBpf: return (0, 1, 1)
        case .predsim, .predsimBpf: return (1 - beta, beta, 1 - beta)
        case .backprop: return (0, 0, 1)
        }
    }
}
