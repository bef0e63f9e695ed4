import CDNNL
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import MemoryLedger

/// Which code computes `Conv2dKernel`'s passes. `LAYERWISE_CONV_ENGINE=im2col|dnnl` overrides the
/// default, which is the one that measured faster here (see `ConvEngine.default`).
public enum ConvEngine: String, CaseIterable, Sendable {
    /// im2col + OpenBLAS sgemm, G images per GEMM (`ConvWorkspace`).
    case im2col
    /// oneDNN's direct convolution through `CDNNL` (`DNNLConvolution`).
    case dnnl
    /// Winograd F(2x2, 3x3) with BLAS GEMMs (`WinogradConvolution`) for the passes it handles,
    /// oneDNN for the rest.
    case winograd
    /// oneDNN, with its Winograd F(4x4, 3x3) for maps of at least `largeMapPositions` output
    /// positions where it has one (its AVX-512 kernels), direct elsewhere: the `dnnl` engine's
    /// arithmetic with a third to a half of the multiplications on the large maps.
    case dnnlWinograd = "dnnl-winograd"
    /// oneDNN in bf16 (`--precision bf16`): on maps of at least `largeMapPositions` positions the
    /// operands each pass reads (x, w, dy) are rounded to bf16 and the products accumulated in
    /// fp32 into fp32 outputs (y, dx, dw, db); smaller maps and 1-channel inputs stay fp32
    /// direct. Needs AVX512_BF16 or AMX-BF16 (`ComputePrecision.refusal`).
    case dnnlBF16 = "dnnl-bf16"

    /// Output positions from which `dnnlWinograd` uses Winograd and `dnnlBF16` bf16: 14x14.
    /// `layerwise bench conv` at vgg8b's shapes (2 threads, AVX-512 with AMX, chunk-sized
    /// batches): Winograd ran 1.3-3.5x direct on 28x28 and 14x14 maps but 0.8-1.2x on 7x7 and
    /// 3x3 in the forward and backward-data, for up to 170 MB of scratch; bf16 ran 1.2-16x fp32 on
    /// 28x28 and 14x14 (but backward-weights 0.9x on two 14x14 shapes) and 0.3-0.9x below.
    public static let largeMapPositions = 196

    /// oneDNN's algorithm and number format for `pass` of `g` under this engine.
    public func dnnlSettings(_ g: ConvGeometry, _ pass: ConvPass) -> (algorithm: DNNLConvolution.Algorithm, precision: ComputePrecision) {
        let large = g.outSpatial >= ConvEngine.largeMapPositions
        switch self {
        case .dnnlWinograd: return (large ? .winograd : .direct, .fp32)
        case .dnnlBF16: return (.direct, large ? .bf16 : .fp32)
        case .im2col, .dnnl, .winograd: return (.direct, .fp32)
        }
    }

    /// Whether this engine runs on this machine (`dnnlBF16` needs bf16 instructions).
    public var isAvailable: Bool {
        self != .dnnlBF16 || ComputePrecision.bf16.refusal() == nil
    }

    /// The engines that run here.
    public static var available: [ConvEngine] { allCases.filter(\.isAvailable) }

    /// The engine of `precision` when the default engine is `base`: bf16 runs on `dnnlBF16`,
    /// fp32 on `base`.
    public static func forPrecision(_ precision: ComputePrecision, default base: ConvEngine = .default) -> ConvEngine {
        precision == .bf16 ? .dnnlBF16 : base
    }

    /// Whether this engine computes `pass` of `g` with Winograd.
    public func usesWinograd(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        self == .winograd && WinogradConvolution.handles(g, pass)
    }

    /// Whether this engine computes `pass` of `g` with oneDNN.
    public func usesDNNL(_ g: ConvGeometry, _ pass: ConvPass) -> Bool {
        self != .im2col && !usesWinograd(g, pass) && DNNLConvolution.handles(g)
    }

    /// Whether no pass of `g` runs im2col (then the workspace needs no im2col columns and G = 1).
    public func skipsIm2col(_ g: ConvGeometry) -> Bool {
        ConvPass.allCases.allSatisfy { usesWinograd(g, $0) || usesDNNL(g, $0) }
    }

    /// The engine new workspaces use: the environment's `LAYERWISE_CONV_ENGINE`, else
    /// `.dnnlWinograd` when OpenMP's threads are passive (`OMP_WAIT_POLICY=passive` in the
    /// environment at start-up), else `.im2col`.
    ///
    /// `.dnnlWinograd` over `.dnnl`: vgg8b predsim at batch 128, 2 threads, on an AVX-512 CPU
    /// (`tools/bench-vs-pytorch.sh`, 3 rounds, medians): 26.4 against 16.2 samples/s recomputing
    /// the sim heads' output, 29.1 against 22.4 keeping it. Where oneDNN has no Winograd (AVX2)
    /// the two are the same primitives.
    ///
    /// `.winograd` is not the default: `layerwise bench train --model vgg8b --breakdown --steps 1
    /// --warmup 1` with each engine back to back (batch 128, 2 threads, AVX2, loaded machine) took
    /// 36.0 s (winograd) vs 37.3 s (dnnl) per predsim step and 12.6 vs 12.5 s per backprop step,
    /// within the run-to-run noise, for 31 MiB more conv scratch (vgg8b predsim plan: 607.3 vs
    /// 576.0 MiB).
    ///
    /// Why: oneDNN's OpenMP threads spin after each primitive and OpenBLAS's pthreads spin after
    /// each GEMM; on 2 shared cores they take turns starving each other. `layerwise bench train
    /// --model vgg8b --feat-mult 0.25` (batch 128, 2 threads, medians, one run, loaded machine):
    /// im2col 71 (predsim) / 180 (backprop) samples/s; oneDNN 22 / 103 with OpenMP's default
    /// wait policy; oneDNN 101 / 251 with OMP_WAIT_POLICY=passive. libgomp reads the variable
    /// when it loads (before our code runs), so it cannot be set from inside the process.
    public static var `default`: ConvEngine {
        if let name = getenv("LAYERWISE_CONV_ENGINE"), let engine = ConvEngine(rawValue: String(cString: name)) {
            return engine
        }
        return openMPIsPassive ? .dnnlWinograd : .im2col
    }

    /// Whether the process started with OMP_WAIT_POLICY=passive.
    public static var openMPIsPassive: Bool {
        guard let policy = getenv("OMP_WAIT_POLICY") else { return false }
        return String(cString: policy).lowercased() == "passive"
    }
}

/// A failure of oneDNN, with its own message.
public struct DNNLError: Error, CustomStringConvertible {
    public var description: String
}

/// One pass of a convolution through oneDNN (`lw_conv_*` in CDNNL) for one (geometry, batch,
/// bias, pass): its primitives are made once, here, and reused by every call. The batch runs as
/// chunks of at most `chunk` images, each reordered into oneDNN's blocked layout (nChw16c) in the
/// caller's workspace and back, so `workspaceBytes` grows with the chunk, not the batch.
///
/// Workspace, for a chunk of n images (all from the caller: `DNNLConvolutionCache` books it):
///
///     oneDNN scratchpad + n (C H W + OC H' W') floats (activation buffers)
///                       + OC C k k floats (the weights in oneDNN's layout) [+ OC for db]
///
/// and n is at most `DNNLConvolution.chunk(for:batch:)`, about `chunkBytes` of activations.
public final class DNNLConvolution {
    public let pass: ConvPass
    public let geometry: ConvGeometry
    public let batch: Int
    public let withBias: Bool
    /// The algorithm asked for (Winograd falls back to direct where oneDNN has none:
    /// `implementation` says which ran) and the number format.
    public let algorithm: Algorithm
    public let precision: ComputePrecision
    private let handle: OpaquePointer

    /// oneDNN's convolution algorithms.
    public enum Algorithm: String, Sendable {
        case direct
        /// Winograd F(4x4, 3x3) where oneDNN has it for the pass and shape, else direct.
        case winograd
    }

    /// Activation bytes (x and y of one chunk) a chunk aims to stay under: 16 MiB. At vgg8b's
    /// 128->256 28x28 that is 13 images; at 512->512 3x3, whole batches of 128.
    public static let chunkBytes = 16 << 20
    /// Threads oneDNN's primitives are made for (and run with): the BLAS's count.
    public static var threads: Int { BLAS.threads }

    /// Whether the `.dnnl` engine computes `geometry` with oneDNN: every conv with at least
    /// `minimumInChannels` input channels, i.e. all of them. vgg8b's first layer (1 channel, x kept
    /// plain nchw) measured 4x faster forward and as fast backward-weights as im2col (bench conv,
    /// batch 32 and 128), so it needs no exception; the knob stays for shapes that might.
    public static func handles(_ geometry: ConvGeometry) -> Bool {
        geometry.inChannels >= minimumInChannels
    }
    public static let minimumInChannels = 1

    /// Images per chunk for `geometry`: as many as fit `chunkBytes` (at least 1, at most batch).
    public static func chunk(for geometry: ConvGeometry, batch: Int) -> Int {
        let perImage = MemoryLayout<Float>.stride * (geometry.inChannels * geometry.inSpatial + geometry.outChannels * geometry.outSpatial)
        return max(1, min(batch, chunkBytes / perImage))
    }

    /// The primitives of `pass` with `engine`'s algorithm and number format for `g`
    /// (`ConvEngine.dnnlSettings`).
    public convenience init(_ pass: ConvPass, geometry g: ConvGeometry, batch: Int, withBias: Bool, engine: ConvEngine,
                            chunk: Int? = nil, threads: Int = DNNLConvolution.threads) throws {
        let settings = engine.dnnlSettings(g, pass)
        try self.init(pass, geometry: g, batch: batch, withBias: withBias, algorithm: settings.algorithm,
                      precision: settings.precision, chunk: chunk, threads: threads)
    }

    public init(_ pass: ConvPass, geometry g: ConvGeometry, batch: Int, withBias: Bool,
                algorithm: Algorithm = .direct, precision: ComputePrecision = .fp32,
                chunk: Int? = nil, threads: Int = DNNLConvolution.threads) throws {
        if let refusal = precision.refusal() { throw DNNLError(description: refusal) }
        self.pass = pass
        geometry = g
        self.batch = batch
        self.withBias = withBias
        self.algorithm = algorithm
        self.precision = precision
        let kind: lw_conv_pass
        switch pass {
        case .forward: kind = LW_CONV_FORWARD
        case .backwardData: kind = LW_CONV_BACKWARD_DATA
        case .backwardWeights: kind = LW_CONV_BACKWARD_WEIGHTS
        }
        let images = Int32(chunk ?? DNNLConvolution.chunk(for: g, batch: batch))
        var message = [CChar](repeating: 0, count: 256)
        let made = message.withUnsafeMutableBufferPointer { text in
            lw_conv_create(kind, Int32(batch), Int32(g.inChannels), Int32(g.outChannels), Int32(g.height), Int32(g.width),
                           Int32(g.kernel), Int32(g.padding), withBias ? 1 : 0, LW_CONV_LAYOUT_BLOCKED,
                           algorithm == .winograd ? LW_CONV_WINOGRAD : LW_CONV_DIRECT,
                           precision == .bf16 ? LW_CONV_BF16 : LW_CONV_F32, images,
                           Int32(threads), text.baseAddress, text.count)
        }
        guard let made else {
            throw DNNLError(description: "\(g) \(pass.rawValue) batch \(batch): " + String(cString: message))
        }
        handle = made
    }

    deinit { lw_conv_destroy(handle) }

    /// Bytes of workspace every call needs (see the type's comment).
    public var workspaceBytes: Int { lw_conv_workspace_bytes(handle) }
    /// The part of `workspaceBytes` that is oneDNN's own scratchpad.
    public var scratchpadBytes: Int { lw_conv_scratchpad_bytes(handle) }
    public var chunk: Int { Int(lw_conv_chunk(handle)) }
    /// oneDNN's implementation, e.g. "jit:avx512_core".
    public var implementation: String { String(cString: lw_conv_implementation(handle)) }

    // x (B, C, H, W), w (OC, C, k, k), b (OC) -> y (B, OC, H', W')
    public func forward(x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>, workspace: UnsafeMutableRawPointer) {
        precondition(pass == .forward)
        check(lw_conv_forward(handle, x, weight, bias, y, workspace))
    }

    // dy (B, OC, H', W'), w -> dx (B, C, H, W), overwritten or added to.
    public func backwardData(dy: UnsafePointer<Float>, weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                             accumulate: Bool, workspace: UnsafeMutableRawPointer) {
        precondition(pass == .backwardData)
        check(lw_conv_backward_data(handle, dy, weight, dx, accumulate ? 1 : 0, workspace))
    }

    // dy, x -> dw (OC, C, k, k), db (OC), overwritten or added to.
    public func backwardWeights(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weightGrad: UnsafeMutablePointer<Float>?,
                                biasGrad: UnsafeMutablePointer<Float>?, accumulate: Bool, workspace: UnsafeMutableRawPointer) {
        precondition(pass == .backwardWeights)
        check(lw_conv_backward_weights(handle, dy, x, weightGrad, biasGrad, accumulate ? 1 : 0, workspace))
    }

    private func check(_ status: Int32) {
        // Arguments were validated by Conv2dKernel; a failure here is a oneDNN runtime fault.
        precondition(status == 0, "oneDNN \(pass.rawValue) of \(geometry) batch \(batch) failed with status \(status)")
    }

    /// oneDNN's version ("2.6.3").
    public static var version: String { String(cString: lw_dnnl_version()) }
}

/// The oneDNN primitives of one or more convolutions that run one at a time (a network's blocks
/// and sim heads), made on first use per (geometry, batch, bias, pass) and kept, with the one
/// ledger allocation (`.workspace`, "conv dnnl workspace") that every call uses as its
/// workspace: as large as the largest `DNNLConvolution.workspaceBytes` made so far. It grows
/// (free, then allocate) only when a new primitive asks for more, so its bound is the maximum
/// over the (geometry, batch, pass) in use, independent of the batch beyond one chunk.
public final class DNNLConvolutionCache {
    private struct Key: Hashable {
        var geometry: ConvGeometry
        var batch: Int
        var withBias: Bool
        var pass: ConvPass
        var engine: ConvEngine
    }
    private var primitives: [Key: DNNLConvolution] = [:]
    /// The shared workspace (nil until the first primitive is made).
    public private(set) var workspace: TrackedBuffer<UInt8>?
    public let layer: Int?
    public let ledger: Ledger

    public init(layer: Int? = nil, ledger: Ledger = .shared) {
        self.layer = layer
        self.ledger = ledger
    }

    /// Bytes booked now.
    public var byteCount: Int { workspace?.byteCount ?? 0 }
    /// Primitives made so far.
    public var count: Int { primitives.count }

    /// The primitive for this pass, made if new, with the workspace grown to fit it.
    public func convolution(_ pass: ConvPass, _ geometry: ConvGeometry, batch: Int, withBias: Bool, engine: ConvEngine = .dnnl)
        -> (DNNLConvolution, UnsafeMutableRawPointer) {
        let key = Key(geometry: geometry, batch: batch, withBias: withBias, pass: pass, engine: engine)
        let conv: DNNLConvolution
        if let made = primitives[key] {
            conv = made
        } else {
            do { conv = try DNNLConvolution(pass, geometry: geometry, batch: batch, withBias: withBias, engine: engine) } catch {
                preconditionFailure("\(error)")
            }
            primitives[key] = conv
            if conv.workspaceBytes > byteCount {
                workspace = nil  // the old allocation is freed before the larger one is booked
                workspace = TrackedBuffer<UInt8>(count: conv.workspaceBytes, category: .workspace, layer: layer,
                                                 label: "conv dnnl workspace", ledger: ledger)
            }
        }
        return (conv, UnsafeMutableRawPointer(workspace!.pointer))
    }
}
