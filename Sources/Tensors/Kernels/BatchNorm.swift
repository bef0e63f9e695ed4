/// Batch normalisation over a (B, C, S) layout: C channels, S spatial positions per channel
/// (S = 1 for a Linear layer's (B, C) output, S = H*W for a conv's (B, C, H, W)).
/// Statistics are taken over B and S per channel; variance for normalising is biased (1/N),
/// the running variance is updated with the unbiased estimate, as PyTorch does.
public enum BatchNormKernel {
    public static let epsilon: Float = 1e-5
    public static let momentum: Float = 0.1

    /// Training forward. `z` is overwritten with x-hat = (z - mean) * invstd (kept for the
    /// backward); `out` receives gamma * x-hat + beta (`out` may be `z` itself when x-hat is not
    /// needed afterwards). `invStd` (C) is saved for the backward; running statistics are updated.
    public static func forwardTraining(z: Tensor, channels: Int, gamma: Tensor, beta: Tensor,
                                       runningMean: Tensor?, runningVar: Tensor?,
                                       mean: Tensor, invStd: Tensor, out: Tensor) {
        let batch = z.rowCount, spatial = z.rowSize / channels
        precondition(z.rowSize == channels * spatial && out.count == z.count)
        let n = batch * spatial
        let zp = z.pointer, mp = mean.pointer, ip = invStd.pointer
        mp.update(repeating: 0, count: channels)
        ip.update(repeating: 0, count: channels)
        if spatial == 1 {
            // (B, C) rows: accumulate whole rows so the inner loop runs over contiguous channels.
            for r in 0..<batch {
                let row = zp + r &* channels
                for c in 0..<channels { mp[c] += row[c] }
            }
            let invB = 1 / Float(batch)
            for c in 0..<channels { mp[c] *= invB }
            for r in 0..<batch {
                let row = zp + r &* channels
                for c in 0..<channels { let d = row[c] - mp[c]; ip[c] += d * d }
            }
            finishStatistics(mean: mp, sumSquares: ip, channels: channels, n: n, runningMean: runningMean, runningVar: runningVar)
            let g = gamma.pointer, b = beta.pointer, op = out.pointer
            for r in 0..<batch {
                let row = zp + r &* channels, orow = op + r &* channels
                for c in 0..<channels {
                    let xhat = (row[c] - mp[c]) * ip[c]
                    row[c] = xhat
                    orow[c] = g[c] * xhat + b[c]
                }
            }
            return
        }
        // Mean, then variance around it (two passes: numerically safer than E[x^2] - E[x]^2).
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            var s: Float = 0
            for k in 0..<spatial { s += zp[start &+ k] }
            mp[c] += s
        }
        let invN = 1 / Float(n)
        for c in 0..<channels { mp[c] *= invN }
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            var s: Float = 0
            let m = mp[c]
            for k in 0..<spatial { let d = zp[start &+ k] - m; s += d * d }
            ip[c] += s
        }
        finishStatistics(mean: mp, sumSquares: ip, channels: channels, n: n, runningMean: runningMean, runningVar: runningVar)
        let g = gamma.pointer, b = beta.pointer, op = out.pointer
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            let m = mp[c], s = ip[c], gc = g[c], bc = b[c]
            for k in 0..<spatial {
                let xhat = (zp[start &+ k] - m) * s
                zp[start &+ k] = xhat
                op[start &+ k] = gc * xhat + bc
            }
        }
    }

    /// Updates the running statistics and turns the sums of squares in `sumSquares` into
    /// 1 / sqrt(biased variance + eps).
    private static func finishStatistics(mean mp: UnsafeMutablePointer<Float>, sumSquares ip: UnsafeMutablePointer<Float>,
                                         channels: Int, n: Int, runningMean: Tensor?, runningVar: Tensor?) {
        let invN = 1 / Float(n)
        if let runningMean, let runningVar {
            let rm = runningMean.pointer, rv = runningVar.pointer
            let unbias = n > 1 ? Float(n) / Float(n - 1) : 1
            for c in 0..<channels {
                rm[c] = (1 - momentum) * rm[c] + momentum * mp[c]
                rv[c] = (1 - momentum) * rv[c] + momentum * ip[c] * invN * unbias
            }
        }
        for c in 0..<channels { ip[c] = 1 / (ip[c] * invN + epsilon).squareRoot() }
    }

    /// Evaluation forward with running statistics: out = gamma (z - rm) / sqrt(rv + eps) + beta.
    public static func forwardEval(z: Tensor, channels: Int, gamma: Tensor, beta: Tensor,
                                   runningMean: Tensor, runningVar: Tensor, out: Tensor) {
        let batch = z.rowCount, spatial = z.rowSize / channels
        let zp = z.pointer, op = out.pointer, g = gamma.pointer, b = beta.pointer
        let rm = runningMean.pointer, rv = runningVar.pointer
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            let s = g[c] / (rv[c] + epsilon).squareRoot(), shift = b[c] - rm[c] * s
            for k in 0..<spatial { op[start &+ k] = zp[start &+ k] * s + shift }
        }
    }

    /// Backward of `forwardTraining`. `grad` holds dL/d(out) on entry and dL/dz on exit.
    /// dgamma (+)= sum dy * x-hat, dbeta (+)= sum dy,
    /// dz = gamma * invstd / N * (N dy - sum dy - x-hat * sum(dy * x-hat)).
    public static func backward(grad: Tensor, xhat: Tensor, channels: Int, gamma: Tensor, invStd: Tensor,
                                gammaGrad: Tensor, betaGrad: Tensor, scratch: Tensor, accumulate: Bool = false) {
        let batch = grad.rowCount, spatial = grad.rowSize / channels
        let n = Float(batch * spatial)
        let dp = grad.pointer, xp = xhat.pointer
        // scratch (2C): per-channel sum(dy), sum(dy * xhat) of this batch
        let sumDy = scratch.pointer, sumDyX = scratch.pointer + channels
        sumDy.update(repeating: 0, count: 2 * channels)
        if spatial == 1 {
            for r in 0..<batch {
                let d = dp + r &* channels, x = xp + r &* channels
                for c in 0..<channels { sumDy[c] += d[c]; sumDyX[c] += d[c] * x[c] }
            }
        } else {
            forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
                var a: Float = 0, b: Float = 0
                for k in 0..<spatial { let d = dp[start &+ k]; a += d; b += d * xp[start &+ k] }
                sumDy[c] += a
                sumDyX[c] += b
            }
        }
        let gg = gammaGrad.pointer, bg = betaGrad.pointer
        for c in 0..<channels {
            gg[c] = (accumulate ? gg[c] : 0) + sumDyX[c]
            bg[c] = (accumulate ? bg[c] : 0) + sumDy[c]
        }
        let g = gamma.pointer, ip = invStd.pointer
        if spatial == 1 {
            // dz = g invstd dy - scale sum(dy) - xhat scale sum(dy xhat), scale = g invstd / N:
            // fold the per-channel terms once (the sums were already copied into the gradients).
            for c in 0..<channels {
                let scale = g[c] * ip[c] / n
                sumDy[c] *= scale
                sumDyX[c] *= scale
            }
            for r in 0..<batch {
                let d = dp + r &* channels, x = xp + r &* channels
                for c in 0..<channels {
                    d[c] = g[c] * ip[c] * d[c] - sumDy[c] - x[c] * sumDyX[c]
                }
            }
            return
        }
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            let scale = g[c] * ip[c] / n, sd = sumDy[c], sdx = sumDyX[c]
            for k in 0..<spatial {
                dp[start &+ k] = scale * (n * dp[start &+ k] - sd - xp[start &+ k] * sdx)
            }
        }
    }

    /// Calls body(channel, start offset) for every contiguous run of S elements, in memory order.
    @inline(__always)
    static func forEachChannelRun(batch: Int, channels: Int, spatial: Int, _ body: (Int, Int) -> Void) {
        var start = 0
        for _ in 0..<batch {
            for c in 0..<channels {
                body(c, start)
                start &+= spatial
            }
        }
    }
}
