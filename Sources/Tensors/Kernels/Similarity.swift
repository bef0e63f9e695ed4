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
            let mean = sum(xr, cols) / Float(cols)
            let sq = centre(xr, into: ur, cols, mean: mean)
            let norm = sq.squareRoot()
            np[i] = norm
            scale(ur, cols, by: 1 / (epsilon + norm))
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
            let dot = Similarity.dot(dr, ur, cols)
            let a = 1 / (epsilon + n), b = n > 0 ? dot / n : 0
            let mean = combine(dr, ur, cols, a: a, b: b) / Float(cols)
            shift(dr, cols, by: -mean)
        }
    }

    // Row loops of forward and backward, eight lanes at a time. Swift does not reassociate
    // float sums, so the plain loops ran one dependent add per element; these keep eight
    // partial sums (a different summation order: results move by rounding only).
    // `layerwise bench train` predsim: forward + backward were 1.5% of a step's cycles (perf).
    typealias V = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// sum of x[0..<n]
    static func sum(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var acc = V(), k = 0
        while k &+ 8 <= n { acc += load(x + k); k &+= 8 }
        var total = acc.sum()
        while k < n { total += x[k]; k &+= 1 }
        return total
    }

    /// u = x - mean; returns sum(u^2)
    static func centre(_ x: UnsafeMutablePointer<Float>, into u: UnsafeMutablePointer<Float>, _ n: Int, mean: Float) -> Float {
        var acc = V(), k = 0
        let m = V(repeating: mean)
        while k &+ 8 <= n { let c = load(x + k) - m; store(c, u + k); acc += c * c; k &+= 8 }
        var total = acc.sum()
        while k < n { let c = x[k] - mean; u[k] = c; total += c * c; k &+= 1 }
        return total
    }

    /// x *= factor
    static func scale(_ x: UnsafeMutablePointer<Float>, _ n: Int, by factor: Float) {
        var k = 0
        let f = V(repeating: factor)
        while k &+ 8 <= n { store(load(x + k) * f, x + k); k &+= 8 }
        while k < n { x[k] *= factor; k &+= 1 }
    }

    /// x += offset
    static func shift(_ x: UnsafeMutablePointer<Float>, _ n: Int, by offset: Float) {
        var k = 0
        let o = V(repeating: offset)
        while k &+ 8 <= n { store(load(x + k) + o, x + k); k &+= 8 }
        while k < n { x[k] += offset; k &+= 1 }
    }

    /// sum(x * y)
    static func dot(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var acc = V(), k = 0
        while k &+ 8 <= n { acc += load(x + k) * load(y + k); k &+= 8 }
        var total = acc.sum()
        while k < n { total += x[k] * y[k]; k &+= 1 }
        return total
    }

    /// d = d a - u b; returns sum(d)
    static func combine(_ d: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, _ n: Int, a: Float, b: Float) -> Float {
        var acc = V(), k = 0
        let av = V(repeating: a), bv = V(repeating: b)
        while k &+ 8 <= n { let c = load(d + k) * av - load(u + k) * bv; store(c, d + k); acc += c; k &+= 8 }
        var total = acc.sum()
        while k < n { let c = d[k] * a - u[k] * b; d[k] = c; total += c; k &+= 1 }
        return total
    }
}
