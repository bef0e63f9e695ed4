/// The similarity-matching pieces of the sim loss (Nøkland & Eidnes 2019, DESIGN.md section 2):
/// S(X): centre each row of X (B, D), divide by (1e-8 + its L2 norm) giving U, R = U U^T (B, B),
/// clamp R to [-1, 1]; L = scale * mean over all B^2 entries of (S(X) - T)^2.
public enum Similarity {
    public static let epsilon: Float = 1e-8

    /// Forward. `normalized` (B, D) receives U and `norms` (B) the row norms (both kept for the
    /// backward); `raw` (B, B) receives U U^T before clamping.
    public static func forward(_ x: Tensor, normalized u: Tensor, norms: Tensor, raw r: Tensor) {
        let rows = x.rowCount, cols = x.rowSize
        precondition(u.count == x.count && norms.count == rows && r.count == rows * rows)
        let xp = x.pointer, up = u.pointer, np = norms.pointer
        for i in 0..<rows {
            let xr = xp + i &* cols, ur = up + i &* cols
            var mean: Float = 0
            for k in 0..<cols { mean += xr[k] }
            mean /= Float(cols)
            var sq: Float = 0
            for k in 0..<cols { let c = xr[k] - mean; ur[k] = c; sq += c * c }
            let norm = sq.squareRoot()
            np[i] = norm
            let inv = 1 / (epsilon + norm)
            for k in 0..<cols { ur[k] *= inv }
        }
        BLAS.gemm(u, u, into: r, transposeB: true)
    }

    /// Clamps `raw` into `clamped` (may be the same tensor... but then the gradient mask is lost,
    /// so the loss takes the raw matrix and clamps on the fly).
    public static func clamp(_ raw: Tensor, into clamped: Tensor) {
        let s = raw.pointer, d = clamped.pointer
        for i in 0..<raw.count { d[i] = min(max(s[i], -1), 1) }
    }

    /// L = scale * mean((clamp(raw) - target)^2). If `grad` is given it receives dL/d(raw):
    /// 2 scale (clamp(raw) - target) / B^2 where -1 <= raw <= 1, else 0 (the clamp passes no
    /// gradient outside its range). `grad` may alias `raw`. `normalizer` overrides B^2.
    @discardableResult
    public static func meanSquaredError(raw: Tensor, target: Tensor, grad: Tensor?, scale: Float = 1,
                                        normalizer: Int? = nil) -> Float {
        precondition(raw.count == target.count)
        let n = raw.count
        let denominator = Float(normalizer ?? n)
        let r = raw.pointer, t = target.pointer
        var total: Double = 0
        let f = 2 * scale / denominator
        let g = grad?.pointer
        for i in 0..<n {
            let v = r[i]
            let d = min(max(v, -1), 1) - t[i]
            total += Double(d * d)
            if let g { g[i] = (v >= -1 && v <= 1) ? f * d : 0 }
        }
        return scale * Float(total) / denominator
    }

    /// Backward of `forward` from dL/dR (B, B) to dL/dX (B, D).
    /// dU = (dR + dR^T) U; dc = dU / (eps + n) - U (dU . U) / n; dX = dc - rowmean(dc).
    /// `rawGrad` is overwritten (symmetrised).
    public static func backward(rawGrad g: Tensor, normalized u: Tensor, norms: Tensor, inputGrad dx: Tensor) {
        let rows = u.rowCount, cols = u.rowSize
        let gp = g.pointer
        for i in 0..<rows {
            for j in i..<rows {
                let s = gp[i &* rows &+ j] + gp[j &* rows &+ i]
                gp[i &* rows &+ j] = s
                gp[j &* rows &+ i] = s
            }
        }
        BLAS.gemm(g, u, into: dx)  // dU, in dx's buffer
        let up = u.pointer, dp = dx.pointer, np = norms.pointer
        for i in 0..<rows {
            let ur = up + i &* cols, dr = dp + i &* cols
            let n = np[i]
            var dot: Float = 0
            for k in 0..<cols { dot += dr[k] * ur[k] }
            let a = 1 / (epsilon + n), b = n > 0 ? dot / n : 0
            var mean: Float = 0
            for k in 0..<cols { let c = dr[k] * a - ur[k] * b; dr[k] = c; mean += c }
            mean /= Float(cols)
            for k in 0..<cols { dr[k] -= mean }
        }
    }
}
