import Tensors

/// The architecture and training signal of a model: everything needed to rebuild it.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// The architecture family: the MLP, or one of the paper's VGG-style conv networks.
    public enum Kind: String, Codable, Sendable, CaseIterable { case mlp, vgg8b, vgg11b }

    /// One entry of a VGG layer list: a conv block of this many channels, or a max pool.
    public enum ConvLayer: Equatable, Sendable { case conv(Int), maxPool }

    /// The architecture family.
    public var kind: Kind = .mlp
    /// Input shape (C, H, W) as the loader delivers it.
    public var inputShape: [Int] = [1, 28, 28]
    /// Classes of the output layer (a trainer takes it from the dataset).
    public var classes: Int = 10
    /// The MLP's hidden blocks.
    public var numLayers: Int = 3
    /// Units of each hidden Linear block.
    public var numHidden: Int = 1024
    /// The hidden blocks' training signal, or global backprop.
    public var loss: LossKind = .predsim
    /// Weight of the sim term in the mixed losses (the pred term and the output layer get 1 - beta).
    public var beta: Float = 0.99
    /// Dropout on each block's hand-off (whole channels for conv blocks).
    public var dropout: Float = 0.025
    /// The activation of every hidden block.
    public var nonlinearity: Nonlinearity = .leakyRelu
    /// VGG: conv widths are multiplied by this.
    public var featMult: Float = 1
    /// VGG: the pred head average-pools h until C h' w' <= this.
    public var dimInDecoder: Int = 1024
    /// The convolutions' number format (`--precision`): bf16 runs them on `ConvEngine.dnnlBF16`
    /// (bf16 operands, fp32 accumulation, fp32 weights and updates); evaluation stays fp32.
    public var precision: ComputePrecision = .fp32
    /// Whether fp32 convolutions may use Winograd where the engine has it
    /// (`ConvEngine.dnnlWinograd`: oneDNN's AVX-512 kernels, maps of 14x14 and up). Its scratch is
    /// larger than direct's, so `--memory-budget` turns it off when it does not fit, and
    /// `--no-winograd` does by hand. The same mathematics either way, rounded differently.
    public var winograd = true

    /// The paper's Fashion-MNIST MLP: 3 x 1024, predsim, beta 0.99, LeakyReLU, dropout 0.025.
    public init() {}

    /// The paper's conv layer lists (before `featMult`).
    public static func layerList(_ kind: Kind) -> [ConvLayer] {
        switch kind {
        case .mlp: return []
        case .vgg8b: return [.conv(128), .conv(256), .maxPool, .conv(256), .conv(512), .maxPool, .conv(512), .maxPool, .conv(512), .maxPool]
        case .vgg11b:
            return [.conv(128), .conv(128), .conv(128), .conv(256), .maxPool, .conv(256), .conv(512), .maxPool,
                    .conv(512), .conv(512), .maxPool, .conv(512), .maxPool]
        }
    }

    /// The conv blocks: (in channels, out channels, height, width, max pool after).
    public var convBlocks: [(inChannels: Int, outChannels: Int, height: Int, width: Int, poolAfter: Bool)] {
        var out: [(Int, Int, Int, Int, Bool)] = []
        var c = inputShape[0], h = inputShape[1], w = inputShape[2]
        for layer in ModelSpec.layerList(kind) {
            switch layer {
            case .conv(let width):
                let oc = max(1, Int((Float(width) * featMult).rounded(.down)))
                out.append((c, oc, h, w, false))
                c = oc
            case .maxPool:
                out[out.count - 1].4 = true
                h /= 2
                w /= 2
            }
        }
        return out
    }

    /// Features entering the first Linear block: the input (mlp) or the last conv hand-off.
    public var linearInputFeatures: Int {
        guard let last = convBlocks.last else { return inputFeatures }
        return last.outChannels * (last.poolAfter ? last.height / 2 : last.height) * (last.poolAfter ? last.width / 2 : last.width)
    }

    /// Hidden Linear blocks: `numLayers` for the mlp, one classifier block for the VGG family.
    public var linearBlockCount: Int { kind == .mlp ? numLayers : 1 }
    /// Hidden blocks of every kind (conv, then Linear): the greedy schedule's rounds.
    public var hiddenBlockCount: Int { convBlocks.count + linearBlockCount }

    enum CodingKeys: String, CodingKey {
        case kind, inputShape, classes, numLayers, numHidden, loss, beta, dropout, nonlinearity, featMult, dimInDecoder, precision, winograd
    }

    /// Fields added after the first checkpoints (featMult, dimInDecoder, precision, winograd) take their defaults
    /// when absent, so older run folders still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        inputShape = try c.decode([Int].self, forKey: .inputShape)
        classes = try c.decode(Int.self, forKey: .classes)
        numLayers = try c.decode(Int.self, forKey: .numLayers)
        numHidden = try c.decode(Int.self, forKey: .numHidden)
        loss = try c.decode(LossKind.self, forKey: .loss)
        beta = try c.decode(Float.self, forKey: .beta)
        dropout = try c.decode(Float.self, forKey: .dropout)
        nonlinearity = try c.decode(Nonlinearity.self, forKey: .nonlinearity)
        featMult = try c.decodeIfPresent(Float.self, forKey: .featMult) ?? 1
        dimInDecoder = try c.decodeIfPresent(Int.self, forKey: .dimInDecoder) ?? 1024
        precision = try c.decodeIfPresent(ComputePrecision.self, forKey: .precision) ?? .fp32
        winograd = try c.decodeIfPresent(Bool.self, forKey: .winograd) ?? true
    }

    /// Values per input example: C x H x W.
    public var inputFeatures: Int { inputShape.reduce(1, *) }

    /// Trainable parameters without local heads (the paper's #params).
    public var parameterCount: Int {
        var total = 0
        for b in convBlocks { total += b.outChannels * b.inChannels * 9 + b.outChannels + 2 * b.outChannels }
        var inFeatures = linearInputFeatures
        for _ in 0..<linearBlockCount {
            total += numHidden * inFeatures + numHidden + 2 * numHidden
            inFeatures = numHidden
        }
        return total + classes * inFeatures + classes
    }

    /// Head parameters (trained, but not counted in #params), for the local losses.
    public var headParameterCount: Int {
        guard loss.isLocal else { return 0 }
        let outputs = loss.isBackpropFree ? LossKind.projectionSize : classes
        var perBlock = 0
        if loss.usesPred { perBlock += outputs * numHidden + outputs }
        if loss.usesSim && !loss.isBackpropFree { perBlock += numHidden * numHidden }
        var total = perBlock * linearBlockCount
        for b in convBlocks {
            let pooling = PredHeadPooling(channels: b.outChannels, height: b.height, width: b.width, dimInDecoder: dimInDecoder)
            let features = b.outChannels * pooling.outHeight * pooling.outWidth
            if loss.usesPred { total += outputs * features + outputs }
            if loss.usesSim && !loss.isBackpropFree { total += b.outChannels * b.outChannels * 9 }
        }
        return total
    }

    /// One line: the architecture, the loss (and beta), the nonlinearity and dropout.
    public var description: String {
        (kind == .mlp ? "mlp \(numLayers)x\(numHidden)" : "\(kind.rawValue)" + (featMult == 1 ? "" : " x\(featMult)") + " + \(numHidden)")
            + ", loss \(loss.rawValue)" + (loss.mixes ? " (beta \(beta))" : "")
            + ", \(nonlinearity.rawValue), dropout \(dropout)" + (precision == .fp32 ? "" : ", \(precision.rawValue) convolutions")
    }
}
