import ArgumentParser
import Layers
import Tensors
import Shards

/// The model flags shared by `train`, `profile` and `bench train`.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: mlp, vgg8b or vgg11b.")
    var model: String = "mlp"
    @Option(help: "Hidden blocks of the mlp.")
    var numLayers: Int = 3
    @Option(help: "Units per hidden Linear block (the VGG's classifier block too).")
    var numHidden: Int = 1024
    @Option(help: "VGG: multiply the conv widths by this.")
    var featMult: Float = 1
    @Option(help: "VGG: the pred head pools h until C x h' x w' <= this.")
    var dimInDecoder: Int = 1024
    @Option(help: "Dropout after each block (default 0.025 for the mlp, 0.1 for VGG; whole channels in conv blocks).")
    var dropout: Float?
    @Option(help: "Convolution arithmetic: fp32, or bf16 on maps of 14x14 and larger (bf16 operands, fp32 accumulation and weights; needs AVX512_BF16 or AMX-BF16, refused where they are missing).")
    var precision: String = "fp32"
    @Flag(inversion: .prefixedNo, help: "fp32 convolutions on 14x14 and larger maps use oneDNN's Winograd where it has one (AVX-512 CPUs): faster, more conv scratch. --memory-budget turns it off when it does not fit.")
    var winograd = true

    func validate() throws {
        guard let kind = ComputePrecision(rawValue: precision) else {
            throw ValidationError("--precision \(precision) is not one of: fp32, bf16")
        }
        if let refusal = kind.refusal() { throw ValidationError(refusal) }
        guard ModelSpec.Kind(rawValue: model) != nil else { throw ValidationError("--model \(model) is not one of: mlp, vgg8b, vgg11b") }
        guard numLayers > 0, numHidden > 0 else { throw ValidationError("--num-layers and --num-hidden must be positive") }
        guard featMult > 0 else { throw ValidationError("--feat-mult must be positive") }
        guard dimInDecoder > 0 else { throw ValidationError("--dim-in-decoder must be positive") }
        if let dropout, !(0..<1).contains(dropout) { throw ValidationError("--dropout must be in [0, 1)") }
    }

    /// A spec for `loss` with these flags, beta and nonlinearity at the loss's defaults.
    func spec(loss: LossKind) -> ModelSpec {
        var spec = ModelSpec()
        spec.kind = ModelSpec.Kind(rawValue: model)!
        spec.loss = loss
        spec.beta = loss.defaultBeta
        spec.nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity)!
        spec.numLayers = numLayers
        spec.numHidden = numHidden
        spec.featMult = featMult
        spec.dimInDecoder = dimInDecoder
        spec.dropout = dropout ?? (spec.kind == .mlp ? 0.025 : 0.1)
        spec.precision = ComputePrecision(rawValue: precision)!
        spec.winograd = winograd
        return spec
    }
}

extension OptimizerStateFormat: ExpressibleByArgument {}
extension SimOutput: ExpressibleByArgument {}
extension HandOffCacheInfo.Precision: ExpressibleByArgument {}
