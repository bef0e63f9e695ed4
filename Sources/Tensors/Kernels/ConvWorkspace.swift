import MemoryLedger

/// The scratch memory of `Conv2dKernel` for one layer shape, booked in the ledger as
/// `.workspace`. Create it once per layer (it depends on the geometry, never on the batch) and
/// pass it to every forward and backward call; the passes allocate nothing.
///
/// The kernel works on G images at a time (`imagesPerGemm`): G = 1 for feature maps of at least
/// `groupingThreshold` positions, otherwise enough images that one GEMM has >= `groupingTarget`
/// columns (a 3x3 map alone gives the BLAS a 9-column GEMM, which runs at a quarter of its speed).
/// It holds:
/// - `columns` (C k k, G H' W'): the im2col matrices of the G images side by side. Forward and
///   backward-weights write them (im2col); backward-data writes W^T dY into them and folds them
///   back into dx (col2im), so this is also the col2im buffer;
/// - `staging` (OC, G H' W'), only when G > 1: the GEMM's output in the forward, and dY gathered
///   from (G, OC, H' W') into (OC, G H' W') for the backward passes.
///
/// The workspace bound is therefore, for any batch size:
///
///     bytes = 4 * (C k k) * G H' W'                 when G = 1
///     bytes = 4 * (C k k + OC) * G H' W'            when G > 1
///
/// (`ConvWorkspace.bytes(_:)`). At vgg8b's shapes: 128->256 at 28x28 (G = 1) 3.4 MiB;
/// 256->512 at 14x14 (G = 1) 1.7 MiB; 512->512 at 7x7 (G = 9) 8.6 MiB; 512->512 at 3x3
/// (G = 45) 7.9 MiB.
public final class ConvWorkspace {
    /// Maps with fewer output positions than this are batched several images per GEMM.
    public static let groupingThreshold = 128
    /// Columns a grouped GEMM aims for. ConvBenchmark at batch 32 (2 BLAS threads, busy machine,
    /// best of 5): 512->512 at 3x3 went from 20-25 GFLOP/s with one image per GEMM to 85-100 with
    /// 11 to 57 images; at 7x7 from 56-81 to 95-108 with 11-16 images; 256 to 600 columns were
    /// within noise of each other, so the target stays modest to keep the workspace small.
    public static let groupingTarget = 400

    public let geometry: ConvGeometry
    /// G: images per GEMM.
    public let imagesPerGemm: Int
    /// (C k k, G H' W'): the im2col matrices of G images side by side.
    public let columns: Tensor
    /// (OC, G H' W') when G > 1, else nil.
    public let staging: Tensor?

    /// - Parameter imagesPerGemm: G; nil picks `defaultImagesPerGemm(geometry)`.
    public init(_ geometry: ConvGeometry, imagesPerGemm: Int? = nil, layer: Int? = nil, ledger: Ledger = .shared) {
        let group = imagesPerGemm ?? ConvWorkspace.defaultImagesPerGemm(geometry)
        precondition(group >= 1, "images per GEMM must be positive, got \(group)")
        self.geometry = geometry
        self.imagesPerGemm = group
        columns = Tensor([geometry.patchSize, group * geometry.outSpatial], .workspace, layer: layer,
                         label: "conv im2col", ledger: ledger, zeroed: false)
        staging = group > 1
            ? Tensor([geometry.outChannels, group * geometry.outSpatial], .workspace, layer: layer,
                     label: "conv staging", ledger: ledger, zeroed: false)
            : nil
    }

    /// G for `geometry`: 1 if H' W' >= `groupingThreshold`, else ceil(`groupingTarget` / H' W').
    public static func defaultImagesPerGemm(_ geometry: ConvGeometry) -> Int {
        let spatial = geometry.outSpatial
        return spatial >= groupingThreshold ? 1 : (groupingTarget + spatial - 1) / spatial
    }

    /// Bytes a workspace for `geometry` books, independent of the batch size:
    /// 4 (C k k) G H' W', plus 4 OC G H' W' when G > 1.
    public static func bytes(_ geometry: ConvGeometry, imagesPerGemm: Int? = nil) -> Int {
        let group = imagesPerGemm ?? defaultImagesPerGemm(geometry)
        let rows = geometry.patchSize + (group > 1 ? geometry.outChannels : 0)
        return MemoryLayout<Float>.stride * rows * group * geometry.outSpatial
    }

    /// Bytes booked by this workspace (equal to `bytes(geometry, imagesPerGemm:)`).
    public var byteCount: Int { columns.byteCount + (staging?.byteCount ?? 0) }
}
