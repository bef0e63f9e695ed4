/// Geometry of a stride-1 2-D convolution with symmetric zero padding over NCHW tensors:
/// x (B, C, H, W), weight (OC, C, k, k), bias (OC), y (B, OC, H', W') with
/// H' = H + 2p - k + 1 and W' = W + 2p - k + 1 (k = 3, p = 1 keeps the size, as in the VGGs).
public struct ConvGeometry: Hashable, Sendable, CustomStringConvertible {
    public let inChannels: Int
    public let outChannels: Int
    public let height: Int
    public let width: Int
    public let kernel: Int
    public let padding: Int

    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int = 3, padding: Int = 1) {
        precondition(inChannels > 0 && outChannels > 0 && height > 0 && width > 0 && kernel > 0 && padding >= 0,
                     "bad convolution geometry C \(inChannels) OC \(outChannels) \(height)x\(width) k \(kernel) p \(padding)")
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "kernel \(kernel) larger than the padded input \(height)x\(width) (padding \(padding))")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.padding = padding
    }

    public var outHeight: Int { height + 2 * padding - kernel + 1 }
    public var outWidth: Int { width + 2 * padding - kernel + 1 }
    /// H * W: elements of one input channel plane.
    public var inSpatial: Int { height * width }
    /// H' * W': elements of one output channel plane, and the column count of the im2col matrix.
    public var outSpatial: Int { outHeight * outWidth }
    /// C * k * k: the length of one receptive field, and the row count of the im2col matrix
    /// (and the inner dimension of the forward GEMM).
    public var patchSize: Int { inChannels * kernel * kernel }

    public var weightShape: [Int] { [outChannels, inChannels, kernel, kernel] }
    public func inputShape(batch: Int) -> [Int] { [batch, inChannels, height, width] }
    public func outputShape(batch: Int) -> [Int] { [batch, outChannels, outHeight, outWidth] }

    /// Multiply-adds x 2 of one pass (forward, backward-data or backward-weights; they are the
    /// same GEMM volume): 2 B OC (C k k) (H' W'). Bias and im2col are not counted.
    public func flops(batch: Int) -> Double {
        2 * Double(batch) * Double(outChannels) * Double(patchSize) * Double(outSpatial)
    }

    public var description: String {
        "conv \(inChannels)->\(outChannels) \(height)x\(width) k\(kernel) p\(padding)"
    }
}
