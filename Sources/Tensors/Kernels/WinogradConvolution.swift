import CKernels

/// Winograd F(2x2, 3x3) for stride-1, pad-1 3x3 convolutions over NCHW tensors (the `.winograd`
/// engine): each 4x4 input tile is transformed (V = B^T d B), the 16 tile positions xi become 16
/// GEMMs through the BLAS, M[xi] (OC, T) = U[xi] (OC, C) V[xi] (C, T) with U = G g G^T, and each
/// output tile is A^T m A. 16 multiplies per 2x2 outputs instead of 36: 2.25x fewer FLOPs in the
/// GEMMs, at the cost of the transforms (`CKernels`' lw_wino_*, one thread).
///
/// The same kernel runs backward-data (the transposed convolution is a pad-1 3x3 convolution of
/// dy with the filter rotated 180 degrees and its channel axes swapped) and backward-weights
/// (the adjoint: dU[xi] (OC, C) = sum over tiles of Z[xi] (OC, T) V[xi]^T with Z = A dy A^T, then
/// dW = G^T dU G).
///
/// Accuracy: the transforms add and subtract at most 4 values per step and halve exactly, so
/// the result is the direct convolution's with a few more roundings per output; the bound per
/// vgg8b shape is pinned by `WinogradConvolutionTests` against float64. The transform loops give
/// the same bits on every `KernelPath`; the GEMMs' bits are the BLAS's (they may differ between
/// OpenBLAS core types, like im2col's).
///
/// Workspace (floats), for blocks of n images (n H'W'/4 tiles at most, `tilesPerBlock`):
///
///     k x 16 OC C                             U (forward), U' (backward-data), dU: one for
///                                             each pass `handles` gives Winograd
///   + max(2 x 16 max(C, OC) T, 9 OC C)        V and M (or V and Z), T = n ceil(H/2) ceil(W/2);
///                                             first the weights as 9 tap planes for U
///   + lw_wino_plane_floats(H, W)              one padded plane and row buffers
///
/// independent of the batch; booked as the network's conv workspace (`ConvWorkspace.bytes`).
public enum WinogradConvolution {
    /// Tiles each of the 16 GEMMs aims for: whole images up to this many tiles per block. Not
    /// tuned: a bound that keeps V and M (and the workspace) near oneDNN's chunk buffers.
    public static let tileTarget = 256
    /// Smallest map any pass computes with Winograd (H and W): below it the padded 2x2 tiles
    /// waste too much.
    public static let minimumSize = 7
    /// Fewest channels (C and OC) any pass computes with Winograd: thinner GEMMs are too small.
    public static let minimumChannels = 16

    /// Which passes the `.winograd` engine gives to Winograd.
    public enum Policy: Sendable {
        /// The passes that measured faster than oneDNN's direct convolution here (see `handles`).
        case measured
        /// Every pass of every eligible geometry (3x3, pad 1, >= `minimumSize`, >= `minimumChannels`):
        /// tests, so that small models exercise the kernels.
        case everyEligiblePass
    }

    /// The policy in force (tests switch it; the tool never does).
    nonisolated(unsafe) public static var policy = Policy.measured

    /// Whether the `.winograd` engine computes this pass of `g` with Winograd (else oneDNN).
    ///
    /// `.measured`: `layerwise bench conv --batch 16 --sim-heads --engines dnnl,winograd,...`
    /// (2 threads, AVX2, a loaded machine: same-engine repeats varied by up to 25%), oneDNN time /
    /// Winograd time over three runs: backward-weights at 14x14 and 28x28 with >= 128 channels
    /// 1.05-1.77 (one run of 128->256 at 28x28 gave 0.51, the others 0.99 and 1.05); forward of
    /// the 256->256 sim head at 28x28 1.17-1.39; every other forward and backward-data between
    /// 0.39 and 1.43 with no consistent winner, 7x7 mostly slower (0.47-0.79). So: backward-weights
    /// at >= 14x14 with >= 128 channels, and forward at >= 28x28 with >= 256 input channels.
    public static func handles(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        let eligible = g.kernel == 3 && g.padding == 1 && g.height >= minimumSize && g.width >= minimumSize
            && g.inChannels >= minimumChannels && g.outChannels >= minimumChannels
        guard eligible else { return false }
        switch (policy, pass) {
        case (.everyEligiblePass, _): return true
        case (.measured, .backwardWeights):
            return min(g.height, g.width) >= 14 && min(g.inChannels, g.outChannels) >= 128
        case (.measured, .forward):
            return min(g.height, g.width) >= 28 && g.inChannels >= 256 && g.outChannels >= 128
        case (.measured, .backwardData):
            return false
        }
    }

    /// Whether any pass of `g` runs with Winograd.
    public static func handlesAnyPass(_ g: ConvGeometry) -> Bool { ConvPass.allCases.contains { handles(g, $0) } }

    /// ceil(H/2) ceil(W/2).
    public static func tilesPerImage(_ g: ConvGeometry) -> Int { lw_wino_tiles(Int32(g.height), Int32(g.width)) }

    /// Images per GEMM block: as many whole images as fit `tileTarget` tiles (at least one).
    public static func imagesPerBlock(_ g: ConvGeometry) -> Int { max(1, tileTarget / tilesPerImage(g)) }

    /// T: the tile columns of the largest block.
    public static func tilesPerBlock(_ g: ConvGeometry) -> Int { imagesPerBlock(g) * tilesPerImage(g) }

    /// Bytes of scratch every pass of `g` needs (the type's comment).
    public static func workspaceBytes(_ g: ConvGeometry) -> Int {
        let wide = max(g.inChannels, g.outChannels)
        let floats = filterRegions(g) * 16 * g.outChannels * g.inChannels + max(2 * 16 * wide * tilesPerBlock(g), 9 * g.outChannels * g.inChannels)
            + lw_wino_plane_floats(Int32(g.height), Int32(g.width))
        return floats * MemoryLayout<Float>.stride
    }

    typealias Regions = (u: UnsafeMutablePointer<Float>, uBackward: UnsafeMutablePointer<Float>, du: UnsafeMutablePointer<Float>,
                         v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, plane: UnsafeMutablePointer<Float>)

    /// Filter-sized regions: one per pass computed with Winograd.
    static func filterRegions(_ g: ConvGeometry) -> Int { ConvPass.allCases.filter { handles(g, $0) }.count }

    /// The workspace's regions: U, U', dU (each only when its pass runs Winograd; the others
    /// alias the next region and are never used), V, M and the plane.
    private static func regions(_ g: ConvGeometry, _ workspace: UnsafeMutablePointer<Float>) -> Regions {
        let block = 16 * max(g.inChannels, g.outChannels) * tilesPerBlock(g), filter = 16 * g.outChannels * g.inChannels
        let u = workspace
        let uBackward = u + (handles(g, .forward) ? filter : 0)
        let du = uBackward + (handles(g, .backwardData) ? filter : 0)
        let v = du + (handles(g, .backwardWeights) ? filter : 0), m = v + block
        return (u, uBackward, du, v, m, v + max(2 * block, 9 * g.outChannels * g.inChannels))
    }

    // x (B, C, H, W), w (OC, C, 3, 3), b (OC) -> y (B, OC, H, W)
    /// y = conv(x, W) + b.
    public static func forward(_ g: ConvGeometry, batch: Int, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               bias: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, workspace: UnsafeMutableRawPointer,
                               filters: WinogradFilters? = nil) {
        let r = regions(g, workspace.assumingMemoryBound(to: Float.self))
        filters?.enter(g)
        if filters?.needsTransform(.forward, g, weight) ?? true {
            lw_wino_filter(weight, Int32(g.outChannels), Int32(g.inChannels), 0, r.u, r.v)
        }
        run(g, batch: batch, from: x, channels: g.inChannels, filter: r.u, to: y, outChannels: g.outChannels,
            bias: bias, accumulate: false, r)
    }

    // dy (B, OC, H, W), w (OC, C, 3, 3) -> dx (B, C, H, W), overwritten or added to
    /// dx (+)= conv^T(dy, W): the forward kernel on dy with the rotated, transposed filter.
    public static func backwardData(_ g: ConvGeometry, batch: Int, dy: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>, accumulate: Bool, workspace: UnsafeMutableRawPointer,
                                    filters: WinogradFilters? = nil) {
        let r = regions(g, workspace.assumingMemoryBound(to: Float.self))
        filters?.enter(g)
        if filters?.needsTransform(.backwardData, g, weight) ?? true {
            lw_wino_filter(weight, Int32(g.outChannels), Int32(g.inChannels), 1, r.uBackward, r.v)
        }
        run(g, batch: batch, from: dy, channels: g.outChannels, filter: r.uBackward, to: dx, outChannels: g.inChannels,
            bias: nil, accumulate: accumulate, r)
    }

    /// The forward kernel over blocks of whole images: `channels` in, `outChannels` out, with
    /// the filter `u` (16, outChannels, channels) already transformed.
    private static func run(_ g: ConvGeometry, batch: Int, from input: UnsafePointer<Float>, channels: Int,
                            filter u: UnsafeMutablePointer<Float>, to output: UnsafeMutablePointer<Float>, outChannels: Int,
                            bias: UnsafePointer<Float>?, accumulate: Bool, _ r: Regions) {
        let h = Int32(g.height), w = Int32(g.width), spatial = g.height * g.width
        let tiles = tilesPerImage(g), step = imagesPerBlock(g)
        for start in stride(from: 0, to: batch, by: step) {
            let n = min(step, batch - start), t = n * tiles
            lw_wino_input(input + start * channels * spatial, Int32(n), Int32(channels), h, w, r.v, t, r.plane)
            for xi in 0..<16 {
                BLAS.gemm(transA: false, transB: false, m: outChannels, n: t, k: channels,
                          a: u + xi * outChannels * channels, lda: channels, b: r.v + xi * channels * t, ldb: t,
                          beta: 0, c: r.m + xi * outChannels * t, ldc: t)
            }
            lw_wino_output(r.m, t, Int32(n), Int32(outChannels), h, w, bias, accumulate ? 1 : 0,
                           output + start * outChannels * spatial, r.plane)
        }
    }

    // dy (B, OC, H, W), x (B, C, H, W) -> dW (OC, C, 3, 3), db (OC), overwritten or added to
    /// dW (+)= G^T (sum over tiles of Z[xi] V[xi]^T) G, db (+)= sum of dy. Either may be nil.
    public static func backwardWeights(_ g: ConvGeometry, batch: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                       weightGrad: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?,
                                       accumulate: Bool, workspace: UnsafeMutableRawPointer, filters: WinogradFilters? = nil) {
        let r = regions(g, workspace.assumingMemoryBound(to: Float.self))
        filters?.enter(g)
        let h = Int32(g.height), w = Int32(g.width), spatial = g.height * g.width
        let c = g.inChannels, oc = g.outChannels
        if let weightGrad {
            let tiles = tilesPerImage(g), step = imagesPerBlock(g)
            if batch == 0 { r.du.update(repeating: 0, count: 16 * oc * c) }
            for start in stride(from: 0, to: batch, by: step) {
                let n = min(step, batch - start), t = n * tiles
                lw_wino_input(x + start * c * spatial, Int32(n), Int32(c), h, w, r.v, t, r.plane)
                lw_wino_output_grad(dy + start * oc * spatial, Int32(n), Int32(oc), h, w, r.m, t, r.plane)
                for xi in 0..<16 {
                    BLAS.gemm(transA: false, transB: true, m: oc, n: c, k: t,
                              a: r.m + xi * oc * t, lda: t, b: r.v + xi * c * t, ldb: t,
                              beta: start > 0 ? 1 : 0, c: r.du + xi * oc * c, ldc: c)
                }
            }
            lw_wino_filter_grad(r.du, Int32(oc), Int32(c), accumulate ? 1 : 0, weightGrad)
        }
        if let biasGrad {
            if !accumulate { biasGrad.update(repeating: 0, count: oc) }
            for b in 0..<batch {
                for o in 0..<oc {
                    let plane = dy + (b * oc + o) * spatial
                    var s: Float = 0
                    for i in 0..<spatial { s += plane[i] }
                    biasGrad[o] += s
                }
            }
        }
    }
}

/// Which transformed filters a Winograd workspace holds, inside `ConvWorkspace.reusingTransformedFilters`
/// (shared by a workspace and its views, which share its memory). Outside a scope nothing is
/// remembered and every pass transforms its filter.
public final class WinogradFilters {
    var depth = 0
    private var forward: (ConvGeometry, UnsafePointer<Float>)?
    private var backward: (ConvGeometry, UnsafePointer<Float>)?
    /// The geometry of the last pass: another geometry lays out the shared memory differently,
    /// so its pass may overwrite the held filters.
    private var lastGeometry: ConvGeometry?

    /// Every Winograd pass announces its geometry before touching the memory.
    func enter(_ g: ConvGeometry) {
        if lastGeometry != g { forget() }
        lastGeometry = g
    }

    /// Whether `pass` must transform `weight` for `g` now (and, inside a scope, records that its
    /// region will hold that filter afterwards).
    func needsTransform(_ pass: ConvPass, _ g: ConvGeometry, _ weight: UnsafePointer<Float>) -> Bool {
        guard depth > 0 else { return true }
        let held = pass == .forward ? forward : backward
        if let held, held.0 == g, held.1 == weight { return false }
        if pass == .forward { forward = (g, weight) } else { backward = (g, weight) }
        return true
    }

    func forget() {
        forward = nil
        backward = nil
        lastGeometry = nil
    }
}
