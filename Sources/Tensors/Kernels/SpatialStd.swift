/// Per-channel spatial standard deviation, the last step of a conv block's sim head (and of the
/// sim-bpf head): x (B, C, H, W) -> s (B, C), s[b, c] = sqrt(sum over the N = H W positions of
/// (x - mean)^2 / (N - 1)), unbiased, as PyTorch's `x.view(B, C, -1).std(dim=2)`.
///
/// N = 1 has no unbiased estimate (PyTorch returns NaN): the caller must flatten instead of
/// taking the std when H W == 1 (and, per the reference, when C <= 3); these kernels require
/// N >= 2.
public enum SpatialStdKernel {
    /// s = std over H, W of x, per (b, c). Two passes (mean, then squared deviations), like
    /// BatchNorm: safer than E[x^2] - E[x]^2 for channels with a large mean.
    public static func forward(x: Tensor, into s: Tensor) {
        let (planes, n) = check(x: x, s: s)
        let xp = x.pointer, sp = s.pointer
        let invN = 1 / Float(n), invNm1 = 1 / Float(n &- 1)
        for plane in 0..<planes {
            let v = xp + plane &* n
            var sum: Float = 0
            for i in 0..<n { sum += v[i] }
            let mean = sum * invN
            var squares: Float = 0
            for i in 0..<n { let d = v[i] - mean; squares += d * d }
            sp[plane] = (squares * invNm1).squareRoot()
        }
    }

    // d s / d x_i = (x_i - mean) / ((N - 1) s): the mean's own dependence on x_i cancels because
    // the deviations sum to zero.
    /// dx (+)= ds[b, c] (x - mean) / ((N - 1) s[b, c]), with `s` the forward's output and the mean
    /// recomputed from x (nothing else is saved). A channel with s == 0 (constant over the map)
    /// gets zero gradient, where PyTorch would give NaN. Without `accumulate` dx is overwritten.
    public static func backward(ds: Tensor, x: Tensor, s: Tensor, into dx: Tensor, accumulate: Bool = false) {
        let (planes, n) = check(x: x, s: s)
        precondition(ds.count == s.count && dx.count == x.count, "spatial std backward: ds \(ds.shape), dx \(dx.shape)")
        let xp = x.pointer, sp = s.pointer, dsp = ds.pointer, dxp = dx.pointer
        let invN = 1 / Float(n)
        for plane in 0..<planes {
            let v = xp + plane &* n, d = dxp + plane &* n
            let sigma = sp[plane]
            let scale = sigma > 0 ? dsp[plane] / (Float(n &- 1) * sigma) : 0
            var sum: Float = 0
            for i in 0..<n { sum += v[i] }
            let mean = sum * invN
            if accumulate {
                for i in 0..<n { d[i] += scale * (v[i] - mean) }
            } else {
                for i in 0..<n { d[i] = scale * (v[i] - mean) }
            }
        }
    }

    /// Returns planes = B C and N = H W.
    private static func check(x: Tensor, s: Tensor) -> (Int, Int) {
        precondition(x.rank == 4, "spatial std wants (B, C, H, W), got \(x.shape)")
        let planes = x.shape[0] * x.shape[1], n = x.shape[2] * x.shape[3]
        precondition(n >= 2, "spatial std over \(n) position(s) is undefined: flatten instead (H W = 1)")
        precondition(s.count == planes, "spatial std of \(x.shape) into \(s.shape), want (\(x.shape[0]), \(x.shape[1]))")
        return (planes, n)
    }
}
