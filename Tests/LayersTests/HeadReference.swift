import NumericTestSupport

/// Float64 references of the local heads' losses (DESIGN.md section 2, Linear blocks).
enum HeadReference {
    /// The sim target clamp(S(onehot(labels))): +1 same class, -1/(K-1) otherwise.
    static func simTarget(labels: [Int32], classes: Int) -> [Double] {
        Reference.similarity(Reference.oneHot(labels, classes: classes), rows: labels.count)
    }

    /// Mean cross-entropy of the pred head's logits h Wp^T + bp.
    static func predLoss(h: [Double], weight: [Double], bias: [Double], labels: [Int32]) -> Double {
        let logits = Reference.linear(h, batch: labels.count, weight: weight, outFeatures: bias.count, bias: bias)
        return Reference.crossEntropy(logits, labels: labels)
    }

    /// Number of rows whose largest pred logit is the label.
    static func predCorrect(h: [Double], weight: [Double], bias: [Double], labels: [Int32]) -> Int {
        let classes = bias.count
        let logits = Reference.linear(h, batch: labels.count, weight: weight, outFeatures: classes, bias: bias)
        return labels.indices.filter { r in
            let row = Array(logits[(r * classes)..<((r + 1) * classes)])
            return row.firstIndex(of: row.max()!)! == Int(labels[r])
        }.count
    }

    /// The sim head's loss: mean((S(h Ws^T) - target)^2).
    static func simLoss(h: [Double], weight: [Double], batch: Int, target: [Double]) -> Double {
        let features = h.count / batch
        let s = Reference.linear(h, batch: batch, weight: weight, outFeatures: features, bias: nil)
        return Reference.similarityLoss(s, rows: batch, target: target)
    }

    /// onehot(labels) P^T (B, D) for a fixed projection P (D, K).
    static func projectedLabels(_ labels: [Int32], projection: [Double], classes: Int) -> [Double] {
        let size = projection.count / classes
        var y = [Double](repeating: 0, count: labels.count * size)
        for (r, l) in labels.enumerated() { for j in 0..<size { y[r * size + j] = projection[j * classes + Int(l)] } }
        return y
    }
}
