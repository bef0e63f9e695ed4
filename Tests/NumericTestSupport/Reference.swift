import Foundation

/// Plain-loop Float64 references of the kernels and losses, written from the definitions
/// (DESIGN.md section 2), not from the kernels' code. Matrices are row-major [Double].
public enum Reference {
    /// C (m, n) = A (m, k) B (k, n)
    public static func matmul(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        precondition(a.count == m * k && b.count == k * n)
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                c[i * n + j] = s
            }
        }
        return c
    }

    /// The (cols, rows) transpose of a (rows, cols) matrix.
    public static func transpose(_ a: [Double], rows: Int, cols: Int) -> [Double] {
        var t = [Double](repeating: 0, count: a.count)
        for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = a[i * cols + j] } }
        return t
    }

    /// y (B, Out) = x (B, In) W^T + b, W is (Out, In).
    public static func linear(_ x: [Double], batch: Int, weight w: [Double], outFeatures: Int, bias: [Double]?) -> [Double] {
        let inFeatures = x.count / batch
        var y = matmul(x, transpose(w, rows: outFeatures, cols: inFeatures), m: batch, k: inFeatures, n: outFeatures)
        if let bias {
            for r in 0..<batch { for o in 0..<outFeatures { y[r * outFeatures + o] += bias[o] } }
        }
        return y
    }

    public struct BatchNormResult {
        public var out: [Double]
        public var mean: [Double]
        /// 1/N variance, used for normalising.
        public var biasedVariance: [Double]
        /// 1/(N-1) variance, used for the running estimate.
        public var unbiasedVariance: [Double]
    }

    /// Training-mode batch norm over a (B, C, S) layout, statistics over B and S per channel.
    public static func batchNormTraining(_ z: [Double], batch: Int, channels: Int, spatial: Int,
                                         gamma: [Double], beta: [Double], epsilon: Double = 1e-5) -> BatchNormResult {
        let n = Double(batch * spatial)
        var mean = [Double](repeating: 0, count: channels)
        var sq = [Double](repeating: 0, count: channels)
        func index(_ b: Int, _ c: Int, _ s: Int) -> Int { (b * channels + c) * spatial + s }
        for b in 0..<batch { for c in 0..<channels { for s in 0..<spatial { mean[c] += z[index(b, c, s)] } } }
        for c in 0..<channels { mean[c] /= n }
        for b in 0..<batch { for c in 0..<channels { for s in 0..<spatial {
            let d = z[index(b, c, s)] - mean[c]
            sq[c] += d * d
        } } }
        let biased = sq.map { $0 / n }
        let unbiased = sq.map { $0 / (n - 1) }
        var out = z
        for b in 0..<batch { for c in 0..<channels { for s in 0..<spatial {
            let i = index(b, c, s)
            out[i] = gamma[c] * (z[i] - mean[c]) / (biased[c] + epsilon).squareRoot() + beta[c]
        } } }
        return BatchNormResult(out: out, mean: mean, biasedVariance: biased, unbiasedVariance: unbiased)
    }

    /// Evaluation-mode batch norm with given running statistics.
    public static func batchNormEval(_ z: [Double], channels: Int, spatial: Int, gamma: [Double], beta: [Double],
                                     runningMean: [Double], runningVar: [Double], epsilon: Double = 1e-5) -> [Double] {
        z.indices.map { i in
            let c = (i / spatial) % channels
            return gamma[c] * (z[i] - runningMean[c]) / (runningVar[c] + epsilon).squareRoot() + beta[c]
        }
    }

    /// max(x, 0) + slope * min(x, 0)
    public static func leakyRelu(_ x: [Double], slope: Double) -> [Double] { x.map { $0 > 0 ? $0 : slope * $0 } }

    /// S(X) before clamping: rows centred, divided by (1e-8 + L2 norm), R = U U^T (B, B).
    public static func similarityRaw(_ x: [Double], rows: Int) -> [Double] {
        let cols = x.count / rows
        var u = x
        for i in 0..<rows {
            var mean = 0.0
            for k in 0..<cols { mean += x[i * cols + k] }
            mean /= Double(cols)
            var sq = 0.0
            for k in 0..<cols { let c = x[i * cols + k] - mean; u[i * cols + k] = c; sq += c * c }
            let scale = 1 / (1e-8 + sq.squareRoot())
            for k in 0..<cols { u[i * cols + k] *= scale }
        }
        return matmul(u, transpose(u, rows: rows, cols: cols), m: rows, k: cols, n: rows)
    }

    public static func clamp(_ v: [Double]) -> [Double] { v.map { min(max($0, -1), 1) } }

    /// clamp(S(X))
    public static func similarity(_ x: [Double], rows: Int) -> [Double] { clamp(similarityRaw(x, rows: rows)) }

    /// scale * mean over all entries of (clamp(raw) - target)^2
    public static func meanSquaredError(raw: [Double], target: [Double], scale: Double = 1) -> Double {
        let c = clamp(raw)
        return scale * zip(c, target).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(raw.count)
    }

    /// The sim loss of features X (B, D) against a (B, B) target.
    public static func similarityLoss(_ x: [Double], rows: Int, target: [Double], scale: Double = 1) -> Double {
        meanSquaredError(raw: similarityRaw(x, rows: rows), target: target, scale: scale)
    }

    /// One-hot rows (B, K).
    public static func oneHot(_ labels: [Int32], classes: Int) -> [Double] {
        var y = [Double](repeating: 0, count: labels.count * classes)
        for (r, l) in labels.enumerated() { y[r * classes + Int(l)] = 1 }
        return y
    }

    /// Mean softmax cross-entropy of logits (B, K): mean_r (log sum_k exp z_rk - z_r,label).
    public static func crossEntropy(_ logits: [Double], labels: [Int32]) -> Double {
        let batch = labels.count, classes = logits.count / batch
        var total = 0.0
        for r in 0..<batch {
            let row = Array(logits[(r * classes)..<((r + 1) * classes)])
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            total += lse - row[Int(labels[r])]
        }
        return total / Double(batch)
    }

    /// Mean over all entries of -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)).
    public static func binaryCrossEntropy(_ logits: [Double], targets: [Double]) -> Double {
        var total = 0.0
        for (x, t) in zip(logits, targets) {
            // log sigmoid(x) = -log(1 + e^-x), computed on the side where the exponent is <= 0.
            let logSig = x >= 0 ? -Foundation.log1p(Foundation.exp(-x)) : x - Foundation.log1p(Foundation.exp(x))
            let logOneMinusSig = logSig - x
            total -= t * logSig + (1 - t) * logOneMinusSig
        }
        return total / Double(logits.count)
    }

    public static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
}
