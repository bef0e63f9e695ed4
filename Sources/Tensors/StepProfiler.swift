import CDNNL
import Foundation

/// Where a training step's time goes, by layer and section (`layerwise bench train
/// --breakdown`). Off by default: every instrumented call site then costs one branch on
/// `isEnabled`, and nothing is timed, allocated or recorded. Not thread-safe: steps run on one
/// thread (the BLAS's and oneDNN's own threads work inside the timed calls).
///
/// Convolutions record their FLOPs with their time, so the table can give GFLOP/s per conv; the
/// time oneDNN spends reordering between our NCHW tensors and its blocked layout is split out of
/// each conv into `reorder` (counted in CDNNL around every reorder primitive).
public enum StepProfiler {
    /// What a slice of time was spent on.
    public enum Section: String, CaseIterable, Sendable {
        case blockConvForward = "block conv fwd"
        case blockConvBackwardData = "block conv bwd-data"
        case blockConvBackwardWeights = "block conv bwd-weights"
        case simConvForward = "sim conv fwd"
        case simConvBackwardData = "sim conv bwd-data"
        case simConvBackwardWeights = "sim conv bwd-weights"
        case reorder = "oneDNN reorders"
        case simStd = "sim std"
        case simLoss = "sim loss (B x B)"
        case predHead = "pred head"
        case batchNorm = "batchnorm"
        case activation = "nonlinearity"
        case dropoutPool = "dropout + pool"
        case outputLayer = "output layer"
        case update = "update"
        case load = "loader"
        /// A whole block's (or the output layer's) share of the step; the table prints the part
        /// of it no other section covers as "other".
        case total = "total"
    }

    public struct Key: Hashable, Sendable {
        /// The block's index (`Network` numbering), `outputLayer` or `loader`.
        public var layer: Int
        public var section: Section
        public init(layer: Int, section: Section) {
            self.layer = layer
            self.section = section
        }
    }

    public struct Entry: Sendable {
        public var seconds: Double = 0
        public var calls: Int = 0
        /// Multiply-adds x 2 done in the section (convolutions only).
        public var flops: Double = 0
    }

    public static let outputLayer = 1000
    public static let loader = -1

    public private(set) static var isEnabled = false
    public private(set) static var entries: [Key: Entry] = [:]

    /// Starts (or stops) recording; recorded entries stay until `reset()`.
    public static func enable(_ on: Bool) {
        isEnabled = on
        lw_dnnl_profile(on ? 1 : 0)
    }

    public static func reset() { entries = [:] }

    /// Runs `body`, adding its wall time (and `flops`) to (layer, section) when enabled.
    @inline(__always)
    public static func measure<T>(_ section: Section, layer: Int, flops: Double = 0, _ body: () throws -> T) rethrows -> T {
        guard isEnabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = try body()
        add(section, layer: layer, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9, flops: flops)
        return result
    }

    /// Times a convolution pass: its time minus the reorders oneDNN ran inside it goes to
    /// `section` with `flops`; the reorders go to `.reorder`.
    @inline(__always)
    public static func measureConv(_ section: Section, layer: Int, flops: Double, _ body: () -> Void) {
        guard isEnabled else { return body() }
        let reorderBefore = lw_dnnl_profile_reorder_ns()
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        let reorder = lw_dnnl_profile_reorder_ns() - reorderBefore
        add(section, layer: layer, seconds: Double(elapsed - min(elapsed, reorder)) * 1e-9, flops: flops)
        if reorder > 0 { add(.reorder, layer: layer, seconds: Double(reorder) * 1e-9) }
    }

    public static func add(_ section: Section, layer: Int, seconds: Double, flops: Double = 0) {
        entries[Key(layer: layer, section: section), default: Entry()].seconds += seconds
        entries[Key(layer: layer, section: section), default: Entry()].calls += 1
        entries[Key(layer: layer, section: section), default: Entry()].flops += flops
    }
}
