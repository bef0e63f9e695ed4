import MemoryLedger
import Tensors

/// A 3x3 convolution (stride 1, pad 1) as a block's map, with its scratch: its own workspace,
/// or a view of one the network shares between every conv (blocks and sim heads run one at a
/// time in both modes). The workspace's size does not depend on the batch (`ConvWorkspace.bytes`).
public struct ConvMap: HiddenMap {
    public static let kind = "conv"
    public static let weightLabel: StaticString = "conv.weight"
    public static let biasLabel: StaticString = "conv.bias"
    public static let isSpatial = true
    public let geometry: ConvGeometry
    public let workspace: ConvWorkspace
    /// The block whose map or sim head this is, and which of the two (`StepProfiler` only).
    public var layer: Int
    public var isSimHead = false

    public init(_ geometry: ConvGeometry, workspace: ConvWorkspace, layer: Int = 0) {
        self.geometry = geometry
        self.workspace = workspace
        self.layer = layer
    }

    /// A map with a view of `sharedWorkspace`, or its own workspace booked as `workspace` of `layer`.
    public init(_ geometry: ConvGeometry, layer: Int, ledger: Ledger, sharedWorkspace: ConvWorkspace?) {
        self.init(geometry, workspace: sharedWorkspace?.serving(geometry) ?? ConvWorkspace(geometry, layer: layer, ledger: ledger),
                  layer: layer)
    }

    public var inChannels: Int { geometry.inChannels }
    public var outChannels: Int { geometry.outChannels }
    public var outSpatial: Int { geometry.outSpatial }
    public var outputFeatures: FeatureShape {
        FeatureShape(channels: geometry.outChannels, height: geometry.outHeight, width: geometry.outWidth)
    }
    public var weightShape: [Int] { geometry.weightShape }
    public var fanIn: Int { geometry.patchSize }
    public func inputShape(batch: Int) -> [Int] { geometry.inputShape(batch: batch) }
    public func outputShape(batch: Int) -> [Int] { geometry.outputShape(batch: batch) }
    public func flops(batch: Int) -> Double { geometry.flops(batch: batch) }
    public var workspaceBytes: Int { ConvWorkspace.bytes(geometry, imagesPerGemm: workspace.imagesPerGemm, engine: workspace.engine) }
    public var examplesPerGemm: Int { workspace.imagesPerGemm }

    // x: (B, C, H, W) -> y: (B, OC, H, W)
    public func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor) {
        StepProfiler.measureConv(isSimHead ? .simConvForward : .blockConvForward, layer: layer, flops: flops(batch: x.rowCount)) {
            Conv2dKernel.forward(x: x.reshaped(geometry.inputShape(batch: x.rowCount)), weight: weight, bias: bias, into: y,
                                 workspace: workspace)
        }
    }

    // dy: (B, OC, H, W), x: (B, C, H, W) -> dW: (OC, C, 3, 3), db: (OC)
    public func backwardWeights(dy: Tensor, x: Tensor, weightGrad: Tensor?, biasGrad: Tensor?, accumulate: Bool) {
        StepProfiler.measureConv(isSimHead ? .simConvBackwardWeights : .blockConvBackwardWeights, layer: layer,
                                 flops: flops(batch: x.rowCount)) {
            Conv2dKernel.backwardWeights(dy: dy, x: x.reshaped(geometry.inputShape(batch: x.rowCount)), weightGrad: weightGrad,
                                         biasGrad: biasGrad, workspace: workspace, accumulate: accumulate)
        }
    }

    // dy: (B, OC, H, W), W: (OC, C, 3, 3) -> dx: (B, C, H, W)
    public func backwardData(dy: Tensor, weight: Tensor, into dx: Tensor, accumulate: Bool) {
        StepProfiler.measureConv(isSimHead ? .simConvBackwardData : .blockConvBackwardData, layer: layer,
                                 flops: flops(batch: dy.rowCount)) {
            Conv2dKernel.backwardData(dy: dy, weight: weight, into: dx, workspace: workspace, accumulate: accumulate)
        }
    }

    public func reusingTransformedFilters<T>(_ body: () throws -> T) rethrows -> T {
        try workspace.reusingTransformedFilters(body)
    }

    public static func square(over output: FeatureShape, layer: Int, ledger: Ledger, sharedWorkspace: ConvWorkspace?) -> ConvMap {
        let geometry = ConvGeometry(inChannels: output.channels, outChannels: output.channels, height: output.height, width: output.width)
        var map = ConvMap(geometry, layer: layer, ledger: ledger, sharedWorkspace: sharedWorkspace)
        map.isSimHead = true
        return map
    }
}
