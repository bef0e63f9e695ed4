/// What a tracked buffer holds. Every byte a tensor owns is booked under exactly one category.
public enum Category: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case weights
    case headWeights
    /// Weights of blocks that train no more (greedy schedule: the frozen prefix, run forward
    /// only, with BatchNorm's running statistics).
    case frozenWeights
    case gradients
    case optimizerState
    case input
    case activations
    case activationGrads
    /// B x B similarity matrices and other per-loss temporaries.
    case lossTemp
    /// im2col and scratch buffers.
    case workspace
    /// Decoded shard blocks and batch buffers.
    case loader

    public var description: String {
        switch self {
        case .weights: return "weights"
        case .headWeights: return "headWeights"
        case .frozenWeights: return "frozenWeights"
        case .gradients: return "gradients"
        case .optimizerState: return "optimizerState"
        case .input: return "input"
        case .activations: return "activations"
        case .activationGrads: return "activationGrads"
        case .lossTemp: return "lossTemp"
        case .workspace: return "workspace"
        case .loader: return "loader"
        }
    }

    public init?(name: String) {
        guard let match = Category.allCases.first(where: { $0.description == name }) else { return nil }
        self = match
    }
}

/// What the trainer is doing when a buffer is allocated or freed.
public enum Phase: Int, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case idle
    case load
    case forward
    case localLoss
    case backward
    case update
    case evaluate
    /// A greedy round begins (its layer: the block that trains in it). Reports mark it on the
    /// timeline.
    case round

    public var description: String {
        switch self {
        case .idle: return "idle"
        case .load: return "load"
        case .forward: return "forward"
        case .localLoss: return "localLoss"
        case .backward: return "backward"
        case .update: return "update"
        case .evaluate: return "evaluate"
        case .round: return "round"
        }
    }
}
