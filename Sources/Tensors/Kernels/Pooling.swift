import MemoryLedger

/// Max pooling 2x2, stride 2, no padding, floor mode (PyTorch `nn.MaxPool2d(2, 2)`):
/// x (B, C, H, W) -> y (B, C, H/2, W/2), rounding down (7x7 -> 3x3; the last row and column of
/// an odd input belong to no window and get no gradient). Ties go to the first maximum in
/// window order (0,0), (0,1), (1,0), (1,1), as PyTorch's CPU kernel does.
///
/// The backward needs to know where each maximum was. Two ways, pick by what is kept anyway:
/// - `forward(..., argmax:)` records the window position (0...3) of each maximum as one byte per
///   output element (a quarter of an Int32 index map);
/// - `backward(dy:x:...)` recomputes the positions from the pooled input x, storing nothing.
public enum MaxPoolKernel {
    /// (B, C, H, W) -> (B, C, H / 2, W / 2).
    public static func outputShape(_ inputShape: [Int]) -> [Int] {
        precondition(inputShape.count == 4, "max pooling wants (B, C, H, W), got \(inputShape)")
        return [inputShape[0], inputShape[1], inputShape[2] / 2, inputShape[3] / 2]
    }

    /// A buffer for the argmax window positions of an output `y` (one byte per element),
    /// booked as `.activations` since it is saved from the forward for the backward.
    public static func makeArgmax(for y: Tensor, layer: Int? = nil, ledger: Ledger = .shared) -> TrackedBuffer<UInt8> {
        TrackedBuffer<UInt8>(count: y.count, category: .activations, layer: layer, label: "maxpool argmax", ledger: ledger)
    }

    // y[b, c, r, s] = max over i, j in {0, 1} of x[b, c, 2r + i, 2s + j]
    /// y = maxpool2x2(x); if `argmax` is given it receives each maximum's window position
    /// i * 2 + j.
    public static func forward(x: Tensor, into y: Tensor, argmax: TrackedBuffer<UInt8>? = nil) {
        let (planes, h, w, outH, outW) = check(x: x, y: y)
        if let argmax { precondition(argmax.count == y.count, "argmax buffer of \(argmax.count) for \(y.shape)") }
        let xp = x.pointer, yp = y.pointer, ap = argmax?.pointer
        for plane in 0..<planes {
            let xPlane = xp + plane &* (h &* w), yPlane = yp + plane &* (outH &* outW)
            for r in 0..<outH {
                let top = xPlane + (2 &* r) &* w, bottom = top + w
                let yRow = yPlane + r &* outW
                for s in 0..<outW {
                    let c0 = 2 &* s
                    // Strict `>` keeps the first maximum (PyTorch's tie rule).
                    var best = top[c0], at: UInt8 = 0
                    if top[c0 &+ 1] > best { best = top[c0 &+ 1]; at = 1 }
                    if bottom[c0] > best { best = bottom[c0]; at = 2 }
                    if bottom[c0 &+ 1] > best { best = bottom[c0 &+ 1]; at = 3 }
                    yRow[s] = best
                    if let ap { ap[plane &* (outH &* outW) &+ r &* outW &+ s] = at }
                }
            }
        }
    }

    // Backward of `forward`: each dy goes to the one input that was the window's maximum.
    /// dx (+)= scatter of dy to the argmax positions recorded by `forward`. Without `accumulate`
    /// dx is overwritten (zero where no maximum was).
    public static func backward(dy: Tensor, argmax: TrackedBuffer<UInt8>, into dx: Tensor, accumulate: Bool = false) {
        let (planes, h, w, outH, outW) = check(x: dx, y: dy)
        precondition(argmax.count == dy.count, "argmax buffer of \(argmax.count) for \(dy.shape)")
        if !accumulate { dx.fill(0) }
        let dxp = dx.pointer, dyp = dy.pointer, ap = argmax.pointer
        for plane in 0..<planes {
            let dxPlane = dxp + plane &* (h &* w), outBase = plane &* (outH &* outW)
            for r in 0..<outH {
                for s in 0..<outW {
                    let o = outBase &+ r &* outW &+ s
                    let at = Int(ap[o])
                    dxPlane[(2 &* r &+ (at >> 1)) &* w &+ 2 &* s &+ (at & 1)] += dyp[o]
                }
            }
        }
    }

    /// The same backward, recomputing the argmax positions from the forward's input `x`.
    public static func backward(dy: Tensor, x: Tensor, into dx: Tensor, accumulate: Bool = false) {
        let (planes, h, w, outH, outW) = check(x: dx, y: dy)
        precondition(x.shape == dx.shape, "pooled input \(x.shape) and its gradient \(dx.shape) differ")
        if !accumulate { dx.fill(0) }
        let xp = x.pointer, dxp = dx.pointer, dyp = dy.pointer
        for plane in 0..<planes {
            let xPlane = xp + plane &* (h &* w), dxPlane = dxp + plane &* (h &* w)
            let dyPlane = dyp + plane &* (outH &* outW)
            for r in 0..<outH {
                let top = (2 &* r) &* w
                for s in 0..<outW {
                    let c0 = top &+ 2 &* s
                    var best = xPlane[c0], at = c0
                    if xPlane[c0 &+ 1] > best { best = xPlane[c0 &+ 1]; at = c0 &+ 1 }
                    if xPlane[c0 &+ w] > best { best = xPlane[c0 &+ w]; at = c0 &+ w }
                    if xPlane[c0 &+ w &+ 1] > best { at = c0 &+ w &+ 1 }
                    dxPlane[at] += dyPlane[r &* outW &+ s]
                }
            }
        }
    }

    /// Validates (B, C, H, W) against (B, C, H/2, W/2); returns planes = B C, H, W, H', W'.
    private static func check(x: Tensor, y: Tensor) -> (Int, Int, Int, Int, Int) {
        let expected = outputShape(x.shape)
        precondition(y.shape == expected, "max pooling of \(x.shape) gives \(expected), not \(y.shape)")
        return (x.shape[0] * x.shape[1], x.shape[2], x.shape[3], expected[2], expected[3])
    }
}

/// Geometry of average pooling with stride = kernel, zero padding, floor mode and
/// count_include_pad (PyTorch `nn.AvgPool2d((kh, kw), padding=(ph, pw))` defaults): every
/// window's sum is divided by kh * kw, padding included. Output size
/// H' = (H + 2 ph - kh) / kh + 1 (rounded down), likewise W'.
public struct AvgPoolGeometry: Hashable, Sendable, CustomStringConvertible {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let padHeight: Int
    public let padWidth: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                padHeight: Int = 0, padWidth: Int = 0) {
        precondition(channels > 0 && height > 0 && width > 0 && kernelHeight > 0 && kernelWidth > 0)
        // PyTorch's rule: padding at most half the kernel, so no window is all padding.
        precondition(padHeight >= 0 && padWidth >= 0 && 2 * padHeight <= kernelHeight && 2 * padWidth <= kernelWidth,
                     "padding (\(padHeight), \(padWidth)) exceeds half the kernel (\(kernelHeight), \(kernelWidth))")
        precondition(height + 2 * padHeight >= kernelHeight && width + 2 * padWidth >= kernelWidth,
                     "kernel (\(kernelHeight), \(kernelWidth)) larger than the padded input \(height)x\(width)")
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.padHeight = padHeight
        self.padWidth = padWidth
    }

    public var outHeight: Int { (height + 2 * padHeight - kernelHeight) / kernelHeight + 1 }
    public var outWidth: Int { (width + 2 * padWidth - kernelWidth) / kernelWidth + 1 }
    public func inputShape(batch: Int) -> [Int] { [batch, channels, height, width] }
    public func outputShape(batch: Int) -> [Int] { [batch, channels, outHeight, outWidth] }
    /// C H' W': the flattened length the pred head's Linear sees.
    public var outputFeatures: Int { channels * outHeight * outWidth }

    public var description: String {
        "avgpool \(channels)x\(height)x\(width) k(\(kernelHeight),\(kernelWidth)) p(\(padHeight),\(padWidth))"
    }
}

/// Average pooling, stride = kernel, with the geometry's zero padding counted in every average.
/// x (B, C, H, W) -> y (B, C, H', W'). Windows do not overlap, so each input element feeds at
/// most one output (inputs past the last whole window feed none, as in floor mode).
public enum AvgPoolKernel {
    // y[b, c, r, s] = (1 / (kh kw)) sum of x[b, c, r kh - ph + i, s kw - pw + j] over the window
    // positions inside the image.
    /// y = avgpool(x).
    public static func forward(x: Tensor, into y: Tensor, geometry g: AvgPoolGeometry) {
        let batch = check(g, x: x, y: y)
        let scale = 1 / Float(g.kernelHeight * g.kernelWidth)
        let xp = x.pointer, yp = y.pointer
        let inPlane = g.height &* g.width, outPlane = g.outHeight &* g.outWidth
        for plane in 0..<(batch &* g.channels) {
            let xPlane = xp + plane &* inPlane, yPlane = yp + plane &* outPlane
            for r in 0..<g.outHeight {
                let (rowLow, rowHigh) = window(r, kernel: g.kernelHeight, pad: g.padHeight, size: g.height)
                for s in 0..<g.outWidth {
                    let (colLow, colHigh) = window(s, kernel: g.kernelWidth, pad: g.padWidth, size: g.width)
                    var sum: Float = 0
                    for ih in rowLow..<rowHigh {
                        let row = xPlane + ih &* g.width
                        for iw in colLow..<colHigh { sum += row[iw] }
                    }
                    yPlane[r &* g.outWidth &+ s] = sum * scale
                }
            }
        }
    }

    // Backward of `forward`: every input inside window (r, s) receives dy[r, s] / (kh kw).
    /// dx (+)= dy spread evenly over each window, divided by kh kw. Without `accumulate` dx is
    /// overwritten (zero where no window reaches).
    public static func backward(dy: Tensor, into dx: Tensor, geometry g: AvgPoolGeometry, accumulate: Bool = false) {
        let batch = check(g, x: dx, y: dy)
        if !accumulate { dx.fill(0) }
        let scale = 1 / Float(g.kernelHeight * g.kernelWidth)
        let dxp = dx.pointer, dyp = dy.pointer
        let inPlane = g.height &* g.width, outPlane = g.outHeight &* g.outWidth
        for plane in 0..<(batch &* g.channels) {
            let dxPlane = dxp + plane &* inPlane, dyPlane = dyp + plane &* outPlane
            for r in 0..<g.outHeight {
                let (rowLow, rowHigh) = window(r, kernel: g.kernelHeight, pad: g.padHeight, size: g.height)
                for s in 0..<g.outWidth {
                    let (colLow, colHigh) = window(s, kernel: g.kernelWidth, pad: g.padWidth, size: g.width)
                    let v = dyPlane[r &* g.outWidth &+ s] * scale
                    for ih in rowLow..<rowHigh {
                        let row = dxPlane + ih &* g.width
                        for iw in colLow..<colHigh { row[iw] += v }
                    }
                }
            }
        }
    }

    /// Input range [low, high) of output index `o` along one axis, clipped to the image.
    @inline(__always)
    static func window(_ o: Int, kernel: Int, pad: Int, size: Int) -> (Int, Int) {
        let start = o &* kernel &- pad
        let low = max(0, start), high = min(size, start &+ kernel)
        return (low, max(low, high))
    }

    private static func check(_ g: AvgPoolGeometry, x: Tensor, y: Tensor) -> Int {
        let batch = x.rowCount
        precondition(x.count == batch * g.channels * g.height * g.width, "\(g): input \(x.shape)")
        precondition(y.count == batch * g.outputFeatures, "\(g): output \(y.shape) is not \(g.outputShape(batch: batch))")
        return batch
    }
}
