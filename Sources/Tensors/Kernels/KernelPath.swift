import CKernels

/// Which implementation of the elementwise kernels (`CKernels`) runs: chosen once from the CPU,
/// or forced with `LAYERWISE_KERNELS=avx512|avx2|neon|generic`. Every path gives the same bits;
/// they differ in speed only.
public enum KernelPath: String, CaseIterable, Sendable {
    case generic, avx2, avx512, neon

    var cValue: lw_kernel_path {
        switch self {
        case .generic: return LW_KERNELS_GENERIC
        case .avx2: return LW_KERNELS_AVX2
        case .avx512: return LW_KERNELS_AVX512
        case .neon: return LW_KERNELS_NEON
        }
    }

    /// The path in use.
    public static var current: KernelPath {
        let path = lw_kernels_path()
        return allCases.first { $0.cValue == path } ?? .generic
    }

    /// Whether this CPU (and this build) can run the path.
    public var isSupported: Bool { lw_kernels_supported(cValue) != 0 }

    /// Uses `path` from now on (tests and benchmarks); false when it is not supported here.
    @discardableResult
    public static func force(_ path: KernelPath) -> Bool { lw_kernels_force(path.cValue) != 0 }

    /// A `LAYERWISE_KERNELS` value that was ignored (unknown, or not supported by this CPU).
    public static var rejectedRequest: String? { lw_kernels_rejected_request().map { String(cString: $0) } }
}

/// The elementwise loops of the optimizers, behind the dispatch of `KernelPath`.
public enum ElementwiseKernels {
    /// Adam (PyTorch's form) over `count` parameters in place: g' = g + wd w;
    /// m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; w -= stepSize m / (sqrt(v) invSqrtBc2 + eps).
    @inline(__always)
    public static func adam(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                            m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int,
                            beta1: Float, beta2: Float, stepSize: Float, invSqrtBc2: Float, epsilon: Float, weightDecay: Float) {
        lw_adam(w, g, m, v, count, beta1, beta2, stepSize, invSqrtBc2, epsilon, weightDecay)
    }

    /// SGD with momentum (PyTorch's form) in place: g' = g + wd w; buf = first ? g' : mu buf + g';
    /// w -= lr buf.
    @inline(__always)
    public static func sgd(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                           momentum buf: UnsafeMutablePointer<Float>, count: Int,
                           lr: Float, mu: Float, weightDecay: Float, first: Bool) {
        lw_sgd(w, g, buf, count, lr, mu, weightDecay, first ? 1 : 0)
    }
}
