import MemoryLedger

/// BatchNorm over a batch seen a chunk at a time (exact chunked local steps, DESIGN.md section 3
/// item 2). The full batch enters BatchNorm only through per-channel sums: the forward's
/// sum z and sum z^2, the backward's sum dy and sum dy x-hat. Each pass accumulates its sums
/// over the chunks, then every chunk is normalised (or differentiated) with the full batch's
/// values, so the result equals `forwardTraining` / `backward` on the whole batch up to
/// summation order. Sums are kept in Float64 (2C values): the variance comes from
/// E[z^2] - E[z]^2, which Float32 would lose for channels whose mean is large against their spread.
extension BatchNormKernel {
    /// moments (2C): moments[c] += sum of z over this chunk's (B, S) positions of channel c,
    /// moments[C + c] += sum of z^2. Zero `moments` before the first chunk.
    // z: (b, C, S) -> moments: (2C)
    public static func accumulateMoments(z: Tensor, channels: Int, into moments: TrackedBuffer<Double>) {
        let batch = z.rowCount, spatial = z.rowSize / channels
        precondition(z.rowSize == channels * spatial && moments.count == 2 * channels)
        let zp = z.pointer, sum = moments.pointer, squares = moments.pointer + channels
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            var s: Double = 0, q: Double = 0
            for k in 0..<spatial { let v = Double(zp[start &+ k]); s += v; q += v * v }
            sum[c] += s
            squares[c] += q
        }
    }

    /// From the full batch's moments over `count` = B S values per channel: mean (C) and
    /// invStd (C) = 1 / sqrt(biased variance + eps); updates the running statistics once, with
    /// the unbiased variance, as `forwardTraining` does.
    public static func finishMoments(_ moments: TrackedBuffer<Double>, channels: Int, count n: Int,
                                     runningMean: Tensor?, runningVar: Tensor?, mean: Tensor, invStd: Tensor) {
        precondition(moments.count == 2 * channels && mean.count == channels && invStd.count == channels)
        let sum = moments.pointer, squares = moments.pointer + channels
        let mp = mean.pointer, ip = invStd.pointer
        let unbias = n > 1 ? Double(n) / Double(n - 1) : 1
        for c in 0..<channels {
            let m = sum[c] / Double(n)
            let variance = max(squares[c] / Double(n) - m * m, 0)
            mp[c] = Float(m)
            ip[c] = Float(1 / (variance + Double(epsilon)).squareRoot())
            if let runningMean, let runningVar {
                let rm = runningMean.pointer, rv = runningVar.pointer
                rm[c] = (1 - momentum) * rm[c] + momentum * Float(m)
                rv[c] = (1 - momentum) * rv[c] + momentum * Float(variance * unbias)
            }
        }
    }

    /// One chunk's forward with given statistics: z becomes x-hat = (z - mean) invStd in place,
    /// out = gamma x-hat + beta.
    // z, out: (b, C, S); mean, invStd, gamma, beta: (C)
    public static func normalize(z: Tensor, channels: Int, mean: Tensor, invStd: Tensor,
                                 gamma: Tensor, beta: Tensor, out: Tensor) {
        let batch = z.rowCount, spatial = z.rowSize / channels
        precondition(z.rowSize == channels * spatial && out.count == z.count)
        let zp = z.pointer, op = out.pointer, mp = mean.pointer, ip = invStd.pointer
        let g = gamma.pointer, b = beta.pointer
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            let m = mp[c], s = ip[c], gc = g[c], bc = b[c]
            for k in 0..<spatial {
                let xhat = (zp[start &+ k] - m) * s
                zp[start &+ k] = xhat
                op[start &+ k] = gc * xhat + bc
            }
        }
    }

    /// sums (2C): sums[c] += sum of dy, sums[C + c] += sum of dy x-hat over this chunk (the
    /// backward's beta and gamma gradients once every chunk is in). Zero `sums` first.
    // grad, xhat: (b, C, S) -> sums: (2C)
    public static func accumulateGradientSums(grad: Tensor, xhat: Tensor, channels: Int, into sums: TrackedBuffer<Double>) {
        let batch = grad.rowCount, spatial = grad.rowSize / channels
        precondition(grad.count == xhat.count && sums.count == 2 * channels)
        let dp = grad.pointer, xp = xhat.pointer, sumDy = sums.pointer, sumDyX = sums.pointer + channels
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            var a: Double = 0, b: Double = 0
            for k in 0..<spatial { let d = dp[start &+ k]; a += Double(d); b += Double(d * xp[start &+ k]) }
            sumDy[c] += a
            sumDyX[c] += b
        }
    }

    /// One chunk of the backward with the full batch's sums over `count` = B S values per
    /// channel: `grad` holds dL/d(out) on entry and dL/dz on exit,
    /// dz = gamma invstd / N (N dy - sum dy - x-hat sum(dy x-hat)).
    public static func inputGradient(grad: Tensor, xhat: Tensor, channels: Int, gamma: Tensor, invStd: Tensor,
                                     sums: TrackedBuffer<Double>, count n: Int) {
        let batch = grad.rowCount, spatial = grad.rowSize / channels
        precondition(grad.count == xhat.count && sums.count == 2 * channels)
        let dp = grad.pointer, xp = xhat.pointer, g = gamma.pointer, ip = invStd.pointer
        let sumDy = sums.pointer, sumDyX = sums.pointer + channels
        let count = Float(n)
        forEachChannelRun(batch: batch, channels: channels, spatial: spatial) { c, start in
            let a = g[c] * ip[c], sd = Float(sumDy[c]) / count, sdx = Float(sumDyX[c]) / count
            for k in 0..<spatial {
                dp[start &+ k] = a * (dp[start &+ k] - sd - xp[start &+ k] * sdx)
            }
        }
    }
}
