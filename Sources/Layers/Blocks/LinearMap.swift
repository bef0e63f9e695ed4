import MemoryLedger
import Tensors

/// A fully connected layer as a block's map: y = x W^T + b, W (out, in). Inputs of any shape are
/// read flat, (B, in) (the classifier block after the last conv block reads (B, C, h, w)).
public struct LinearMap: HiddenMap {
    public static let kind = "linear"
    public static let weightLabel: StaticString = "linear.weight"
    public static let biasLabel: StaticString = "linear.bias"
    public static let isSpatial = false
    public let inFeatures: Int
    public let outFeatures: Int

    public init(inFeatures: Int, outFeatures: Int) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    public var inChannels: Int { inFeatures }
    public var outChannels: Int { outFeatures }
    public var outSpatial: Int { 1 }
    public var outputFeatures: FeatureShape { FeatureShape(channels: outFeatures, height: 1, width: 1) }
    public var weightShape: [Int] { [outFeatures, inFeatures] }
    public var fanIn: Int { inFeatures }
    public func inputShape(batch: Int) -> [Int] { [batch, inFeatures] }
    public func outputShape(batch: Int) -> [Int] { [batch, outFeatures] }
    public func flops(batch: Int) -> Double { 2 * Double(batch) * Double(inFeatures) * Double(outFeatures) }
    public var workspaceBytes: Int { 0 }
    public var examplesPerGemm: Int { 1 }

    // x: (B, in) -> y: (B, out)
    public func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor) {
        LinearKernel.forward(x: x.reshaped([x.rowCount, inFeatures]), weight: weight, bias: bias, into: y)
    }

    // dy: (B, out), x: (B, in) -> dW (out, in) (+)= dy^T x, db (out) (+)= column sums of dy
    public func backwardWeights(dy: Tensor, x: Tensor, weightGrad: Tensor?, biasGrad: Tensor?, accumulate: Bool) {
        if let weightGrad {
            BLAS.gemm(dy, x.reshaped([x.rowCount, inFeatures]), into: weightGrad, transposeA: true, beta: accumulate ? 1 : 0)
        }
        if let biasGrad { LinearKernel.columnSums(dy, into: biasGrad, accumulate: accumulate) }
    }

    // dy: (B, out), W: (out, in) -> dx: (B, in) (+)= dy W
    public func backwardData(dy: Tensor, weight: Tensor, into dx: Tensor, accumulate: Bool) {
        BLAS.gemm(dy, weight, into: dx, beta: accumulate ? 1 : 0)
    }

    public static func square(over output: FeatureShape, layer: Int, ledger: Ledger, sharedWorkspace: ConvWorkspace?) -> LinearMap {
        LinearMap(inFeatures: output.count, outFeatures: output.count)
    }
}
