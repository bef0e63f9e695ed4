/// How the pred head of a conv block (and the sim-bpf head) average-pools h (C, H, W) before its
/// Linear decoder, as the reference code (Nøkland's train.py, LocalLossBlockConv) decides it:
/// starting from a 1x1 kernel, double the kernel height, then (if still too big) the width,
/// alternately, until C * ceil(H / kh) * ceil(W / kw) <= dimInDecoder or kh reaches H. The
/// padding ph = (kh (ceil(H / kh) - floor(H / kh))) / 2 (likewise pw) makes the floor-mode
/// average pooling produce exactly ceil(H / kh) x ceil(W / kw) outputs; the zero padding counts
/// in every average (count_include_pad).
///
/// vgg8b on 28x28, dimInDecoder 1024: 128 channels at 28x28 -> kernel 16x8, padding 8x4,
/// output 128x2x4; 512 channels at 3x3 -> kernel 4x2, padding 2x1, output 512x1x2.
///
/// The reference only sees square maps (H = W) and stops growing at kh >= H; here H and W may
/// differ and the stop test uses H.
public struct PredHeadPooling: Hashable, Sendable, CustomStringConvertible {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let padHeight: Int
    public let padWidth: Int
    /// ceil(H / kh) and ceil(W / kw), the reference's predicted output size.
    public let outHeight: Int
    public let outWidth: Int

    public init(channels: Int, height: Int, width: Int, dimInDecoder: Int) {
        precondition(channels > 0 && height > 0 && width > 0 && dimInDecoder > 0)
        func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
        var kh = 1, kw = 1
        var outH = height, outW = width
        var features = channels * outH * outW
        while features > dimInDecoder && kh < height {
            kh *= 2
            outH = ceilDiv(height, kh)
            features = channels * outH * outW
            if features > dimInDecoder {
                kw *= 2
                outW = ceilDiv(width, kw)
                features = channels * outH * outW
            }
        }
        self.channels = channels
        self.height = height
        self.width = width
        kernelHeight = kh
        kernelWidth = kw
        outHeight = outH
        outWidth = outW
        if kh > 1 || kw > 1 {
            padHeight = (kh * (outH - height / kh)) / 2
            padWidth = (kw * (outW - width / kw)) / 2
        } else {
            padHeight = 0
            padWidth = 0
        }
    }

    /// False when the map is already small enough: the head flattens h as it is.
    public var pools: Bool { kernelHeight > 1 || kernelWidth > 1 }

    /// C H' W': the input width of the head's Linear decoder.
    public var features: Int { channels * outHeight * outWidth }

    /// The pooling to run (a 1x1 kernel, the identity, when `pools` is false). Its output size
    /// equals (`outHeight`, `outWidth`).
    public var geometry: AvgPoolGeometry {
        AvgPoolGeometry(channels: channels, height: height, width: width, kernelHeight: kernelHeight,
                        kernelWidth: kernelWidth, padHeight: padHeight, padWidth: padWidth)
    }

    public var description: String {
        "pred pooling \(channels)x\(height)x\(width): kernel \(kernelHeight)x\(kernelWidth) padding \(padHeight)x\(padWidth) -> \(channels)x\(outHeight)x\(outWidth)"
    }
}
