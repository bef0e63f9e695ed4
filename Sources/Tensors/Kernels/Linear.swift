/// Fully connected layer kernels. Shapes: x (B, In), weight (Out, In), bias (Out), y (B, Out).
public enum LinearKernel {
    /// y = x W^T + b
    public static func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor) {
        let batch = x.rowCount, outFeatures = weight.rowCount
        if let bias {
            // Broadcast the bias into y first and let the GEMM accumulate onto it (beta = 1).
            let yp = y.pointer, bp = bias.pointer
            for r in 0..<batch { (yp + r &* outFeatures).update(from: bp, count: outFeatures) }
            BLAS.gemm(x, weight, into: y, transposeB: true, beta: 1)
        } else {
            BLAS.gemm(x, weight, into: y, transposeB: true)
        }
    }

    /// Backward of `forward`. Given dy (B, Out):
    /// dW (+)= dy^T x, db (+)= sum over rows of dy, dx = dy W (if requested).
    /// `accumulate` adds into dW and db instead of overwriting (for chunked steps).
    public static func backward(dy: Tensor, x: Tensor, weight: Tensor,
                                weightGrad: Tensor?, biasGrad: Tensor?, inputGrad: Tensor?,
                                accumulate: Bool = false) {
        if let weightGrad {
            // dW (Out, In) = dy^T (Out, B) x (B, In)
            BLAS.gemm(dy, x, into: weightGrad, transposeA: true, beta: accumulate ? 1 : 0)
        }
        if let biasGrad {
            columnSums(dy, into: biasGrad, accumulate: accumulate)
        }
        if let inputGrad {
            // dx (B, In) = dy (B, Out) W (Out, In)
            BLAS.gemm(dy, weight, into: inputGrad)
        }
    }

    /// out[j] (+)= sum_i m[i, j] for a (rows, cols) matrix.
    public static func columnSums(_ m: Tensor, into out: Tensor, accumulate: Bool = false) {
        let rows = m.rowCount, cols = m.rowSize
        precondition(out.count == cols, "column sums of \(m.shape) into \(out.shape)")
        let o = out.pointer, p = m.pointer
        if !accumulate { o.update(repeating: 0, count: cols) }
        for r in 0..<rows {
            let row = p + r &* cols
            for c in 0..<cols { o[c] += row[c] }
        }
    }
}
