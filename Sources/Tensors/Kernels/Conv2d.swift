/// 2-D convolution, stride 1, symmetric zero padding, with bias, over NCHW tensors, as im2col +
/// one OpenBLAS sgemm per image. Shapes (see `ConvGeometry`):
/// x (B, C, H, W), weight (OC, C, k, k), bias (OC), y (B, OC, H', W').
///
/// Working one image at a time keeps the scratch memory at one image's column matrix whatever
/// the batch: `ConvWorkspace.bytes(geometry)` = 4 C k k H' W' bytes, booked as `.workspace`.
/// The weight tensor (OC, C, k, k) is read as the row-major matrix (OC, C k k), whose columns are
/// ordered like the rows of the im2col matrix.
public enum Conv2dKernel {
    // y_b (OC, H'W') = W (OC, Ckk) cols_b (Ckk, H'W') + bias
    /// y = conv(x, W) + b.
    public static func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor, workspace: ConvWorkspace) {
        let g = workspace.geometry
        let batch = check(g, x: x, weight: weight, y: y, bias: bias)
        let cols = workspace.columns.pointer, w = weight.pointer
        let xp = x.pointer, yp = y.pointer
        let inImage = g.inChannels &* g.inSpatial, outImage = g.outChannels &* g.outSpatial
        for b in 0..<batch {
            let yb = yp + b &* outImage
            Im2col.im2col(g, image: xp + b &* inImage, columns: cols)
            if let bias {
                // Broadcast the bias into y first and let the GEMM accumulate onto it (beta = 1).
                let bp = bias.pointer
                for o in 0..<g.outChannels {
                    let v = bp[o]
                    (yb + o &* g.outSpatial).update(repeating: v, count: g.outSpatial)
                }
            }
            BLAS.gemm(transA: false, transB: false, m: g.outChannels, n: g.outSpatial, k: g.patchSize,
                      a: w, lda: g.patchSize, b: cols, ldb: g.outSpatial,
                      beta: bias == nil ? 0 : 1, c: yb, ldc: g.outSpatial)
        }
    }

    // Differentiates the GEMM of `forward` with respect to cols_b, then undoes im2col:
    // dcols_b (Ckk, H'W') = W^T (Ckk, OC) dy_b (OC, H'W'); dx_b (C, H, W) += col2im(dcols_b).
    /// dx (+)= conv^T(dy, W). Without `accumulate`, dx is overwritten (each image's slice is
    /// zeroed just before its col2im); with it, the gradient is added to what dx holds (for
    /// example the pred head's contribution when the sim head's conv is differentiated).
    public static func backwardData(dy: Tensor, weight: Tensor, into dx: Tensor, workspace: ConvWorkspace,
                                    accumulate: Bool = false) {
        let g = workspace.geometry
        let batch = check(g, x: dx, weight: weight, y: dy, bias: nil)
        let cols = workspace.columns.pointer, w = weight.pointer
        let dxp = dx.pointer, dyp = dy.pointer
        let inImage = g.inChannels &* g.inSpatial, outImage = g.outChannels &* g.outSpatial
        for b in 0..<batch {
            BLAS.gemm(transA: true, transB: false, m: g.patchSize, n: g.outSpatial, k: g.outChannels,
                      a: w, lda: g.patchSize, b: dyp + b &* outImage, ldb: g.outSpatial,
                      beta: 0, c: cols, ldc: g.outSpatial)
            let dxb = dxp + b &* inImage
            if !accumulate { dxb.update(repeating: 0, count: inImage) }
            Im2col.col2imAdd(g, columns: cols, image: dxb)
        }
    }

    // Differentiates the GEMM of `forward` with respect to W, summed over the images:
    // dW (OC, Ckk) (+)= sum_b dy_b (OC, H'W') cols_b^T (H'W', Ckk); db (+)= sum over b, h, w of dy.
    /// dW (+)= sum_b dy_b im2col(x_b)^T and db (+)= sum of dy over batch and positions.
    /// `accumulate` adds into the gradients instead of overwriting them (chunked steps).
    /// Either gradient may be nil.
    public static func backwardWeights(dy: Tensor, x: Tensor, weightGrad: Tensor?, biasGrad: Tensor?,
                                       workspace: ConvWorkspace, accumulate: Bool = false) {
        let g = workspace.geometry
        let batch = check(g, x: x, weight: weightGrad, y: dy, bias: biasGrad)
        let dyp = dy.pointer
        let outImage = g.outChannels &* g.outSpatial
        if let weightGrad {
            let cols = workspace.columns.pointer, xp = x.pointer, dw = weightGrad.pointer
            let inImage = g.inChannels &* g.inSpatial
            if batch == 0 && !accumulate { weightGrad.fill(0) }
            for b in 0..<batch {
                Im2col.im2col(g, image: xp + b &* inImage, columns: cols)
                BLAS.gemm(transA: false, transB: true, m: g.outChannels, n: g.patchSize, k: g.outSpatial,
                          a: dyp + b &* outImage, lda: g.outSpatial, b: cols, ldb: g.outSpatial,
                          beta: (accumulate || b > 0) ? 1 : 0, c: dw, ldc: g.patchSize)
            }
        }
        if let biasGrad {
            let db = biasGrad.pointer, spatial = g.outSpatial
            if !accumulate { db.update(repeating: 0, count: g.outChannels) }
            for b in 0..<batch {
                for o in 0..<g.outChannels {
                    let plane = dyp + (b &* outImage &+ o &* spatial)
                    var s: Float = 0
                    for t in 0..<spatial { s += plane[t] }
                    db[o] += s
                }
            }
        }
    }

    /// Validates shapes once, outside the loops; returns the batch size.
    private static func check(_ g: ConvGeometry, x: Tensor, weight: Tensor?, y: Tensor, bias: Tensor?) -> Int {
        let batch = x.rowCount
        precondition(x.count == batch * g.inChannels * g.inSpatial,
                     "\(g): input \(x.shape) is not (B, \(g.inChannels), \(g.height), \(g.width))")
        precondition(y.count == batch * g.outChannels * g.outSpatial,
                     "\(g): output \(y.shape) is not (\(batch), \(g.outChannels), \(g.outHeight), \(g.outWidth))")
        if let weight {
            precondition(weight.count == g.outChannels * g.patchSize, "\(g): weight \(weight.shape) is not \(g.weightShape)")
        }
        if let bias { precondition(bias.count == g.outChannels, "\(g): bias \(bias.shape) is not (\(g.outChannels))") }
        return batch
    }
}
