import Tensors

/// The architecture and training signal of a model: everything needed to rebuild it.
public struct ModelSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case mlp }

    public var kind: Kind = .mlp
    /// Input shape (C, H, W) as the loader delivers it.
    public var inputShape: [Int] = [1, 28, 28]
    public var classes: Int = 10
    public var numLayers: Int = 3
    public var numHidden: Int = 1024
    public var loss: LossKind = .predsim
    public var beta: Float = 0.99
    public var dropout: Float = 0.025
    public var nonlinearity: Nonlinearity = .leakyRelu

    public init() {}

    public var inputFeatures: Int { inputShape.reduce(1, *) }

    /// Trainable parameters without local heads (the paper's #params).
    public var parameterCount: Int {
        var total = 0, inFeatures = inputFeatures
        for _ in 0..<numLayers {
            total += numHidden * inFeatures + numHidden + 2 * numHidden
            inFeatures = numHidden
        }
        return total + classes * inFeatures + classes
    }

    /// Head parameters (trained, but not counted in #params), for the local losses.
    public var headParameterCount: Int {
        guard loss.isLocal else { return 0 }
        var perBlock = 0
        if loss.usesPred { perBlock += loss.isBackpropFree ? LocalHeads.projectionSize * numHidden + LocalHeads.projectionSize : classes * numHidden + classes }
        if loss.usesSim && !loss.isBackpropFree { perBlock += numHidden * numHidden }
        return perBlock * numLayers
    }

    public var description: String {
        "\(kind.rawValue) \(numLayers)x\(numHidden), loss \(loss.rawValue)" + (loss.mixes ? " (beta \(beta))" : "")
            + ", \(nonlinearity.rawValue), dropout \(dropout)"
    }
}
