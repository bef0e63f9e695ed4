import Foundation
/// Softmax cross-entropy over logits (B, K) with integer labels, mean over the batch.
public enum CrossEntropy {
    /// Returns (loss, correct predictions). If `grad` is given, it receives
    /// scale * d(loss)/d(logits) = scale * (softmax - onehot) / B.
    /// `normalizer` overrides the B of the mean (chunked steps divide by the full batch).
    @discardableResult
    public static func lossAndGrad(logits: Tensor, labels: UnsafePointer<Int32>, grad: Tensor?,
                                   scale: Float = 1, normalizer: Int? = nil) -> (loss: Float, correct: Int) {
        let batch = logits.rowCount, classes = logits.rowSize
        let denominator = Float(normalizer ?? batch)
        let lp = logits.pointer
        var total: Double = 0
        var correct = 0
        for r in 0..<batch {
            let row = lp + r &* classes
            var maxValue = row[0], argmax = 0
            for k in 1..<classes where row[k] > maxValue { maxValue = row[k]; argmax = k }
            var sum: Float = 0
            for k in 0..<classes { sum += (row[k] - maxValue).exp }
            let label = Int(labels[r])
            precondition(label >= 0 && label < classes, "label \(label) out of range 0..<\(classes)")
            let logSum = sum.log
            total += Double(logSum - (row[label] - maxValue))
            if argmax == label { correct += 1 }
            if let grad {
                let g = grad.pointer + r &* classes
                let f = scale / denominator
                for k in 0..<classes { g[k] = (row[k] - maxValue - logSum).exp * f }
                g[label] -= f
            }
        }
        return (Float(total) / denominator, correct)
    }

    /// Index of the largest logit per row.
    public static func argmax(_ logits: Tensor, row r: Int) -> Int {
        let classes = logits.rowSize, row = logits.pointer + r &* classes
        var best = 0
        for k in 1..<classes where row[k] > row[best] { best = k }
        return best
    }
}

/// Sigmoid binary cross-entropy with logits, mean over all B x D entries.
public enum BinaryCrossEntropy {
    /// Returns the loss; `grad` receives scale * (sigmoid(x) - t) / (B * D) (with B from `normalizer`).
    @discardableResult
    public static func lossAndGrad(logits: Tensor, targets: Tensor, grad: Tensor?, scale: Float = 1,
                                   normalizer: Int? = nil) -> Float {
        precondition(logits.count == targets.count)
        let n = logits.count
        let denominator = Float((normalizer ?? logits.rowCount) * logits.rowSize)
        let x = logits.pointer, t = targets.pointer
        var total: Double = 0
        for i in 0..<n {
            let v = x[i]
            // max(v, 0) - v t + log(1 + exp(-|v|)): stable for large |v|.
            total += Double(max(v, 0) - v * t[i] + (1 + (-abs(v)).exp).log)
        }
        if let grad {
            let g = grad.pointer, f = scale / denominator
            for i in 0..<n { g[i] = (1 / (1 + (-x[i]).exp) - t[i]) * f }
        }
        return Float(total) / denominator
    }
}

extension Float {
    @inline(__always) var exp: Float { Float(Foundation.exp(Double(self))) }
    @inline(__always) var log: Float { Float(Foundation.log(Double(self))) }
}
