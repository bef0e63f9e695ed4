/// 2-D convolution, stride 1, symmetric zero padding, with bias, over NCHW tensors, as im2col +
/// OpenBLAS sgemm over a group of G images at a time (G from the workspace: 1 for large maps,
/// more for small ones so that each GEMM stays wide). Shapes (see `ConvGeometry`):
/// x (B, C, H, W), weight (OC, C, k, k), bias (OC), y (B, OC, H', W').
///
/// Working a bounded group at a time keeps the scratch memory independent of the batch:
/// `ConvWorkspace.bytes(geometry)`, booked as `.workspace`. The weight tensor (OC, C, k, k) is
/// read as the row-major matrix (OC, C k k), whose columns are ordered like the rows of the im2col
/// matrix. Within a group of n images the GEMMs see (., n H' W') matrices whose rows are
/// n H' W' apart; image g owns columns g H' W' ..< (g + 1) H' W'. A group of one image reads and
/// writes x, y, dy and dx in place (no staging copy).
///
/// With a `.dnnl` workspace, the geometries oneDNN handles run through `DNNLConvolution` instead
/// (same shapes, same accumulate contract; its scratch is the workspace's `dnnlCache`).
///
/// A workspace is scratch for one call at a time: calls that may run concurrently need their own.
public enum Conv2dKernel {
    // Y_grp (OC, n H'W') = W (OC, Ckk) cols_grp (Ckk, n H'W') + bias, then scattered to
    // y (n, OC, H'W').
    /// y = conv(x, W) + b.
    public static func forward(x: Tensor, weight: Tensor, bias: Tensor?, into y: Tensor, workspace: ConvWorkspace) {
        let g = workspace.geometry
        let batch = check(g, x: x, weight: weight, y: y, bias: bias)
        if let (scratch, filters) = workspace.winograd(.forward) {
            WinogradConvolution.forward(g, batch: batch, x: x.pointer, weight: weight.pointer, bias: bias.map { UnsafePointer($0.pointer) },
                                        y: y.pointer, workspace: scratch, filters: filters)
            return
        }
        if let (conv, scratch) = workspace.dnnl(.forward, batch: batch, withBias: bias != nil) {
            conv.forward(x: x.pointer, weight: weight.pointer, bias: bias.map { UnsafePointer($0.pointer) }, y: y.pointer, workspace: scratch)
            return
        }
        let cols = workspace.columns.pointer, w = weight.pointer, spatial = g.outSpatial
        let xp = x.pointer, yp = y.pointer
        let inImage = g.inChannels &* g.inSpatial, outImage = g.outChannels &* spatial
        for start in stride(from: 0, to: batch, by: workspace.imagesPerGemm) {
            let n = min(workspace.imagesPerGemm, batch &- start), ld = n &* spatial
            for i in 0..<n {
                Im2col.im2col(g, image: xp + (start &+ i) &* inImage, columns: cols + i &* spatial, rowStride: ld)
            }
            // One image: the GEMM writes y_b directly; several: into staging, scattered below.
            let out = n == 1 ? yp + start &* outImage : workspace.staging!.pointer
            if let bias {
                // Broadcast the bias into the output first and let the GEMM accumulate onto it.
                let bp = bias.pointer
                for o in 0..<g.outChannels { (out + o &* ld).update(repeating: bp[o], count: ld) }
            }
            BLAS.gemm(transA: false, transB: false, m: g.outChannels, n: ld, k: g.patchSize,
                      a: w, lda: g.patchSize, b: cols, ldb: ld,
                      beta: bias == nil ? 0 : 1, c: out, ldc: ld)
            if n > 1 {
                for i in 0..<n {
                    let yb = yp + (start &+ i) &* outImage
                    for o in 0..<g.outChannels {
                        (yb + o &* spatial).update(from: out + (o &* ld &+ i &* spatial), count: spatial)
                    }
                }
            }
        }
    }

    // Differentiates the GEMM of `forward` with respect to cols, then undoes im2col:
    // dcols_grp (Ckk, n H'W') = W^T (Ckk, OC) dY_grp (OC, n H'W'); dx_b (C, H, W) += col2im(dcols_b).
    /// dx (+)= conv^T(dy, W). Without `accumulate`, dx is overwritten (each image's slice is
    /// zeroed just before its col2im); with it, the gradient is added to what dx holds (for
    /// example the pred head's contribution when the sim head's conv is differentiated).
    public static func backwardData(dy: Tensor, weight: Tensor, into dx: Tensor, workspace: ConvWorkspace,
                                    accumulate: Bool = false) {
        let g = workspace.geometry
        let batch = check(g, x: dx, weight: weight, y: dy, bias: nil)
        if let (scratch, filters) = workspace.winograd(.backwardData) {
            WinogradConvolution.backwardData(g, batch: batch, dy: dy.pointer, weight: weight.pointer, dx: dx.pointer,
                                             accumulate: accumulate, workspace: scratch, filters: filters)
            return
        }
        if let (conv, scratch) = workspace.dnnl(.backwardData, batch: batch, withBias: false) {
            conv.backwardData(dy: dy.pointer, weight: weight.pointer, dx: dx.pointer, accumulate: accumulate, workspace: scratch)
            return
        }
        let cols = workspace.columns.pointer, w = weight.pointer, spatial = g.outSpatial
        let dxp = dx.pointer, dyp = dy.pointer
        let inImage = g.inChannels &* g.inSpatial, outImage = g.outChannels &* spatial
        for start in stride(from: 0, to: batch, by: workspace.imagesPerGemm) {
            let n = min(workspace.imagesPerGemm, batch &- start), ld = n &* spatial
            let source = gather(dyp + start &* outImage, images: n, g, workspace)
            BLAS.gemm(transA: true, transB: false, m: g.patchSize, n: ld, k: g.outChannels,
                      a: w, lda: g.patchSize, b: source, ldb: ld,
                      beta: 0, c: cols, ldc: ld)
            for i in 0..<n {
                let dxb = dxp + (start &+ i) &* inImage
                if !accumulate { dxb.update(repeating: 0, count: inImage) }
                Im2col.col2imAdd(g, columns: cols + i &* spatial, rowStride: ld, image: dxb)
            }
        }
    }

    // Differentiates the GEMM of `forward` with respect to W, summed over the groups:
    // dW (OC, Ckk) (+)= sum_grp dY_grp (OC, n H'W') cols_grp^T (n H'W', Ckk);
    // db (+)= sum over b, h, w of dy.
    /// dW (+)= sum_b dy_b im2col(x_b)^T and db (+)= sum of dy over batch and positions.
    /// `accumulate` adds into the gradients instead of overwriting them (chunked steps).
    /// Either gradient may be nil.
    public static func backwardWeights(dy: Tensor, x: Tensor, weightGrad: Tensor?, biasGrad: Tensor?,
                                       workspace: ConvWorkspace, accumulate: Bool = false) {
        let g = workspace.geometry
        let batch = check(g, x: x, weight: weightGrad, y: dy, bias: biasGrad)
        if let (scratch, filters) = workspace.winograd(.backwardWeights) {
            WinogradConvolution.backwardWeights(g, batch: batch, dy: dy.pointer, x: x.pointer, weightGrad: weightGrad?.pointer,
                                                biasGrad: biasGrad?.pointer, accumulate: accumulate, workspace: scratch, filters: filters)
            return
        }
        if weightGrad != nil || biasGrad != nil,
           let (conv, scratch) = workspace.dnnl(.backwardWeights, batch: batch, withBias: biasGrad != nil) {
            conv.backwardWeights(dy: dy.pointer, x: x.pointer, weightGrad: weightGrad?.pointer, biasGrad: biasGrad?.pointer,
                                 accumulate: accumulate, workspace: scratch)
            return
        }
        let dyp = dy.pointer, spatial = g.outSpatial
        let outImage = g.outChannels &* spatial
        if let weightGrad {
            let cols = workspace.columns.pointer, xp = x.pointer, dw = weightGrad.pointer
            let inImage = g.inChannels &* g.inSpatial
            if batch == 0 && !accumulate { weightGrad.fill(0) }
            for start in stride(from: 0, to: batch, by: workspace.imagesPerGemm) {
                let n = min(workspace.imagesPerGemm, batch &- start), ld = n &* spatial
                for i in 0..<n {
                    Im2col.im2col(g, image: xp + (start &+ i) &* inImage, columns: cols + i &* spatial, rowStride: ld)
                }
                let source = gather(dyp + start &* outImage, images: n, g, workspace)
                BLAS.gemm(transA: false, transB: true, m: g.outChannels, n: g.patchSize, k: ld,
                          a: source, lda: ld, b: cols, ldb: ld,
                          beta: (accumulate || start > 0) ? 1 : 0, c: dw, ldc: g.patchSize)
            }
        }
        if let biasGrad {
            let db = biasGrad.pointer
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

    /// dy of n images, (n, OC, H'W'), as the matrix (OC, n H'W'): the tensor itself for one
    /// image, else a copy into the workspace's staging buffer.
    private static func gather(_ dy: UnsafeMutablePointer<Float>, images n: Int, _ g: ConvGeometry,
                               _ workspace: ConvWorkspace) -> UnsafeMutablePointer<Float> {
        if n == 1 { return dy }
        let staging = workspace.staging!.pointer, spatial = g.outSpatial, ld = n &* spatial
        for i in 0..<n {
            let image = dy + i &* (g.outChannels &* spatial)
            for o in 0..<g.outChannels {
                (staging + (o &* ld &+ i &* spatial)).update(from: image + o &* spatial, count: spatial)
            }
        }
        return staging
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
