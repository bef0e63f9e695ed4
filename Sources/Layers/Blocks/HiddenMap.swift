import MemoryLedger
import Tensors

/// What differs between the hidden blocks of DESIGN.md section 2: the learned map at the start of
/// the block, a Linear layer or a 3x3 convolution (stride 1, pad 1). Everything after the map
/// (BatchNorm, nonlinearity, dropout, pooling, the heads, the local and chunked steps) is the
/// same code, `HiddenBlock`, reading only what this protocol says.
///
/// Shapes: x (B, in...) -> y (B, outChannels, spatial...) where a linear map has no spatial
/// dimensions (`outSpatial` 1) and a conv map has (H', W'). Weight (OC, ...) and bias (OC).
public protocol HiddenMap {
    /// The middle of its tensors' names: `blocks.{k}.linear.weight`, `blocks.{k}.conv.weight`.
    static var kind: String { get }
    /// The ledger's labels of its weight and bias: `linear.weight`, `conv.bias`.
    static var weightLabel: StaticString { get }
    static var biasLabel: StaticString { get }
    /// Whether outputs are feature maps (B, C, H, W): channel dropout, max pooling between
    /// blocks, pooled pred features and the sim head's spatial std apply only to them.
    static var isSpatial: Bool { get }

    var inChannels: Int { get }
    var outChannels: Int { get }
    /// Values per output channel of one example: H' W' (1 for a linear map). BatchNorm averages
    /// over B x outSpatial values per channel; channel dropout drops groups of this size.
    var outSpatial: Int { get }
    /// Output of one example as (C, H, W); a linear map's is (F, 1, 1).
    var outputFeatures: FeatureShape { get }
    var weightShape: [Int] { get }
    /// Inputs one output value reads: PyTorch's default init draws weight and bias from
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    var fanIn: Int { get }
    func inputShape(batch: Int) -> [Int]
    func outputShape(batch: Int) -> [Int]
    /// Multiply-adds x 2 of one pass over `batch` examples (forward, backward to the input and
    /// backward to the weights each cost this much).
    func flops(batch: Int) -> Double
    /// Scratch the map's kernels book (a conv's im2col workspace; 0 for a linear map), independent
    /// of the batch.
    var workspaceBytes: Int { get }
    /// Examples the map's kernels compute as one unit: a chunk of examples that is a multiple of
    /// it runs the same GEMMs as the whole batch (the sim head's chunking relies on it).
    var examplesPerGemm: Int { get }

    // x: (B, in...) -> y: (B, OC, spatial...); y = map(x) + bias (bias nil: none)
    func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor)
    /// Backward of `forward` to its parameters: dW (+)= and db (+)= from dy and x (either
    /// gradient may be nil); `accumulate` adds instead of overwriting (chunked steps).
    // dy: (B, OC, spatial...), x: (B, in...) -> dW: weightShape, db: (OC)
    func backwardWeights(dy: Tensor, x: Tensor, weightGrad: Tensor?, biasGrad: Tensor?, accumulate: Bool)
    /// Backward of `forward` to its input: dx (+)= map^T(dy).
    // dy: (B, OC, spatial...) -> dx: (B, in...)
    func backwardData(dy: Tensor, weight: Tensor, into dx: Tensor, accumulate: Bool)

    /// The sim head's learned map over a block output of shape `output`: a square Linear
    /// (F -> F) or a 3x3 conv C -> C, pad 1 (DESIGN.md section 2). Its scratch is a view of
    /// `sharedWorkspace` when given (blocks and heads run one at a time).
    static func square(over output: FeatureShape, layer: Int, ledger: Ledger, sharedWorkspace: ConvWorkspace?) -> Self

    /// Runs `body`, in which the caller promises not to change the weights it passes: a conv map's
    /// Winograd passes then transform each filter once (`ConvWorkspace.reusingTransformedFilters`).
    func reusingTransformedFilters<T>(_ body: () throws -> T) rethrows -> T
}

extension HiddenMap {
    public func reusingTransformedFilters<T>(_ body: () throws -> T) rethrows -> T { try body() }
}

/// One example's block output: C channels of H x W values (a linear block's: F x 1 x 1).
public struct FeatureShape: Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }
    public var count: Int { channels * height * width }
}
