import Layers
import Tensors

/// What `layerwise profile` measures: one model and batch, run in local mode (the spec's loss)
/// and in backprop mode, each in a fresh process. Written as JSON for the child processes.
public struct ProfileRequest: Codable, Sendable, Equatable {
    /// The model with its local loss (the backprop run uses the same spec with `.backprop`).
    public var model = ModelSpec()
    public var optimizer = OptimizerSettings()
    public var batchSize = 128
    public var steps = 3
    /// Dataset folder; nil: generated inputs of the model's input shape from a seeded generator.
    public var data: String?
    public var seed: UInt64 = 1
    /// BLAS threads (nil: all cores).
    public var threads: Int?
    /// Local mode's chunked local steps (`--chunk`); nil: whole batches. Backprop ignores it.
    public var chunk: Int?

    public init() {}

    /// The spec for a mode: "local" keeps the loss, "backprop" replaces it.
    public func spec(mode: String) -> ModelSpec {
        var s = model
        if mode == "backprop" {
            s.loss = .backprop
            s.nonlinearity = Nonlinearity(rawValue: LossKind.backprop.defaultNonlinearity) ?? s.nonlinearity
        }
        return s
    }

    /// "mlp 3x1024, local loss predsim" or "vgg8b x0.5 + 1024, dim_in_decoder 1024, local loss predsim", for the report's run line.
    public var modelDescription: String {
        let chunked = chunk.map { ", local steps in chunks of \($0)" } ?? ""
        switch model.kind {
        case .mlp:
            return "mlp \(model.numLayers)x\(model.numHidden), local loss \(model.loss.rawValue)" + chunked
        case .vgg8b, .vgg11b:
            let mult = model.featMult == 1 ? "" : " x\(model.featMult)"
            return "\(model.kind.rawValue)\(mult) + \(model.numHidden), dim_in_decoder \(model.dimInDecoder), local loss \(model.loss.rawValue)" + chunked
        }
    }
}
