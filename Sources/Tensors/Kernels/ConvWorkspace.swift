import MemoryLedger

/// The scratch memory of `Conv2dKernel` for one layer shape: one im2col matrix of ONE image,
/// (C k k, H' W') floats, booked in the ledger as `.workspace`. Create it once per layer (it
/// depends on the geometry, never on the batch) and pass it to every forward and backward call.
///
/// All three passes use the same buffer:
/// - forward and backward-weights write the image's columns into it (im2col);
/// - backward-data writes W^T dY into it and then folds it back into dx (col2im), so the col2im
///   buffer is this same matrix.
/// The workspace bound is therefore, for any batch size:
///
///     bytes = 4 * (C * k * k) * (H' * W')
///
/// (`ConvWorkspace.bytes(_:)`). Examples at vgg8b's shapes: 128->256 at 28x28, 3.5 MiB;
/// 256->512 at 14x14, 1.7 MiB.
public final class ConvWorkspace {
    public let geometry: ConvGeometry
    /// (C k k, H' W'): the im2col matrix of one image.
    public let columns: Tensor

    public init(_ geometry: ConvGeometry, layer: Int? = nil, ledger: Ledger = .shared) {
        self.geometry = geometry
        columns = Tensor([geometry.patchSize, geometry.outSpatial], .workspace, layer: layer,
                         label: "conv im2col", ledger: ledger, zeroed: false)
    }

    /// Bytes a workspace for `geometry` books, independent of the batch size:
    /// 4 * (C k k) * (H' W').
    public static func bytes(_ geometry: ConvGeometry) -> Int {
        MemoryLayout<Float>.stride * geometry.patchSize * geometry.outSpatial
    }

    /// The same bound from the raw sizes (stride 1): 4 * C k k * H' W'.
    public static func bytes(inChannels: Int, height: Int, width: Int, kernel: Int = 3, padding: Int = 1) -> Int {
        bytes(ConvGeometry(inChannels: inChannels, outChannels: 1, height: height, width: width,
                           kernel: kernel, padding: padding))
    }

    public var byteCount: Int { columns.byteCount }
}
