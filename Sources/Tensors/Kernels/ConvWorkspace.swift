import MemoryLedger

/// The scratch memory of `Conv2dKernel` for one layer shape, booked in the ledger as
/// `.workspace`. Create it once per layer (it depends on the geometry, never on the batch) and
/// pass it to every forward and backward call; the passes allocate nothing. Convs that never run
/// at the same time (a block's conv and its sim head's conv) can share one allocation:
/// `ConvWorkspace(blockConv, alsoServing: [simConv])` and `.serving(simConv)`; it books
/// `bytes(covering:)`, the larger of the bounds.
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
///
/// With the `.dnnl` engine, the geometries oneDNN computes (`DNNLConvolution.handles`) need no
/// im2col memory (their `bytes` is 0, `columns` is empty, G = 1): their scratch is the
/// `dnnlCache`'s one allocation, shared by every view like `storage` and booked when the first
/// primitive is made (bound: `DNNLConvolution`'s comment).
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
    /// (OC, G H' W') when G > 1, else nil. Follows `columns` in the same allocation.
    public let staging: Tensor?
    /// The one ledger allocation behind `columns` and `staging`, shared with `serving(_:)` views.
    public let storage: TrackedBuffer<Float>
    /// Which code runs this workspace's convolutions.
    public let engine: ConvEngine
    /// oneDNN's primitives and workspace (`.dnnl` engine only), shared with `serving(_:)` views.
    public let dnnlCache: DNNLConvolutionCache?

    /// A workspace for `geometry`, large enough to also serve `others` through `serving(_:)`
    /// (for example a block's conv and its sim head's conv, which never run at the same time):
    /// one allocation of `bytes(covering:)` bytes instead of one per conv.
    /// - Parameters:
    ///   - geometry: the convolution this workspace is made for.
    ///   - imagesPerGemm: G for `geometry`; nil picks `defaultImagesPerGemm(geometry)`.
    ///   - others: further convolutions the workspace must also serve.
    ///   - engine: `.dnnl` computes the geometries `DNNLConvolution.handles` with oneDNN.
    ///   - layer: the layer its bytes are booked under (nil: none).
    ///   - ledger: where its bytes are booked.
    public convenience init(_ geometry: ConvGeometry, imagesPerGemm: Int? = nil, alsoServing others: [ConvGeometry] = [],
                            engine: ConvEngine = .default, layer: Int? = nil, ledger: Ledger = .shared) {
        let noColumns = engine.skipsIm2col(geometry)
        let group = noColumns ? 1 : imagesPerGemm ?? ConvWorkspace.defaultImagesPerGemm(geometry)
        precondition(group >= 1, "images per GEMM must be positive, got \(group)")
        let bytes = max(noColumns ? ConvWorkspace.bytes(geometry, engine: engine)
                                  : ConvWorkspace.bytes(geometry, imagesPerGemm: group, engine: .im2col),
                        ConvWorkspace.bytes(covering: others, engine: engine))
        let storage = TrackedBuffer<Float>(count: bytes / MemoryLayout<Float>.stride, category: .workspace, layer: layer,
                                           label: "conv workspace", ledger: ledger)
        let cache = engine != .im2col ? DNNLConvolutionCache(layer: layer, ledger: ledger) : nil
        self.init(storage: storage, geometry: geometry, imagesPerGemm: group, engine: engine, dnnlCache: cache,
                  filters: WinogradFilters())
    }

    private init(storage: TrackedBuffer<Float>, geometry: ConvGeometry, imagesPerGemm group: Int, engine: ConvEngine,
                 dnnlCache: DNNLConvolutionCache?, filters: WinogradFilters) {
        self.storage = storage
        self.filters = filters
        self.geometry = geometry
        self.engine = engine
        self.dnnlCache = dnnlCache
        imagesPerGemm = group
        if engine.skipsIm2col(geometry) {
            columns = Tensor(storage: storage, offset: 0, shape: [0])
            staging = nil
            return
        }
        let width = group * geometry.outSpatial
        columns = Tensor(storage: storage, offset: 0, shape: [geometry.patchSize, width])
        staging = group > 1
            ? Tensor(storage: storage, offset: columns.count, shape: [geometry.outChannels, width])
            : nil
    }

    /// A workspace for `other` over this one's memory (no allocation), with the default G for
    /// `other`. Its passes overwrite this workspace's contents: use one view at a time.
    public func serving(_ other: ConvGeometry) -> ConvWorkspace {
        let needed = ConvWorkspace.bytes(other, engine: engine)
        precondition(needed <= storage.byteCount,
                     "workspace of \(storage.byteCount) bytes cannot serve \(other) (\(needed) bytes)")
        return ConvWorkspace(storage: storage, geometry: other,
                             imagesPerGemm: engine.skipsIm2col(other) ? 1 : ConvWorkspace.defaultImagesPerGemm(other),
                             engine: engine, dnnlCache: dnnlCache, filters: filters)
    }

    /// Runs `body` with the promise that no weight tensor passed to this workspace's passes (or
    /// its views') changes inside it: Winograd then transforms each filter once per pass kind
    /// and reuses it (the sim head's chunk loops run 8 to 16 passes with one weight). Outside
    /// such a scope every pass transforms its filter afresh.
    public func reusingTransformedFilters<T>(_ body: () throws -> T) rethrows -> T {
        filters.depth += 1
        defer {
            filters.depth -= 1
            if filters.depth == 0 { filters.forget() }
        }
        return try body()
    }

    /// Winograd's transformed-filter bookkeeping, shared by a workspace and its views.
    let filters: WinogradFilters

    /// The oneDNN primitive for a pass over `batch` images, when this workspace's engine computes
    /// its geometry with oneDNN (nil: use im2col).
    func dnnl(_ pass: ConvPass, batch: Int, withBias: Bool) -> (DNNLConvolution, UnsafeMutableRawPointer)? {
        guard let dnnlCache, batch > 0, engine.usesDNNL(geometry, pass) else { return nil }
        return dnnlCache.convolution(pass, geometry, batch: batch, withBias: withBias, engine: engine)
    }

    /// This workspace's memory as Winograd's scratch, when its engine computes the pass of its
    /// geometry with Winograd (nil: another path).
    func winograd(_ pass: ConvPass) -> (UnsafeMutableRawPointer, WinogradFilters)? {
        guard engine.usesWinograd(geometry, pass) else { return nil }
        return (UnsafeMutableRawPointer(storage.pointer), filters)
    }

    /// G for `geometry`: 1 if H' W' >= `groupingThreshold`, else ceil(`groupingTarget` / H' W').
    public static func defaultImagesPerGemm(_ geometry: ConvGeometry) -> Int {
        let spatial = geometry.outSpatial
        return spatial >= groupingThreshold ? 1 : (groupingTarget + spatial - 1) / spatial
    }

    /// Bytes a workspace for `geometry` books, independent of the batch size:
    /// 4 (C k k) G H' W', plus 4 OC G H' W' when G > 1; 0 when `engine` is `.dnnl` and oneDNN
    /// computes the geometry (its memory is `DNNLConvolutionCache`'s, booked on first use).
    /// With `.winograd`, a geometry it computes needs `WinogradConvolution.workspaceBytes`.
    public static func bytes(_ geometry: ConvGeometry, imagesPerGemm: Int? = nil, engine: ConvEngine = .default) -> Int {
        if engine == .winograd && WinogradConvolution.handlesAnyPass(geometry) { return WinogradConvolution.workspaceBytes(geometry) }
        if engine.skipsIm2col(geometry) { return 0 }
        let group = imagesPerGemm ?? defaultImagesPerGemm(geometry)
        let rows = geometry.patchSize + (group > 1 ? geometry.outChannels : 0)
        return MemoryLayout<Float>.stride * rows * group * geometry.outSpatial
    }

    /// Bytes of one workspace serving all of `geometries` (default G each): the largest of them.
    public static func bytes(covering geometries: [ConvGeometry], engine: ConvEngine = .default) -> Int {
        geometries.map { bytes($0, engine: engine) }.max() ?? 0
    }

    /// Bytes booked by this workspace's allocations (shared by its views): im2col's and, for
    /// `.dnnl`, oneDNN's so far.
    public var byteCount: Int { storage.byteCount + (dnnlCache?.byteCount ?? 0) }
}
