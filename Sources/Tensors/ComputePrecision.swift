import CKernels
import Foundation

/// The number format convolutions compute in (`--precision`). Only fp32 is implemented: bf16
/// (bf16 operands, fp32 accumulation, fp32 master weights) needs a CPU with AVX512_BF16 or
/// AMX-BF16 to be worth running, and is refused everywhere with a message saying why: the
/// missing CPU feature where the CPU lacks it, oneDNN's ISA cap where `ONEDNN_MAX_CPU_ISA` hides
/// it, else that this build has no bf16 convolutions.
public enum ComputePrecision: String, CaseIterable, Sendable {
    case fp32, bf16

    /// What the CPU offers for bf16 arithmetic (injectable for tests).
    public struct CPUFeatures: Sendable {
        public var avx512BF16: Bool
        public var amxBF16: Bool
        /// `ONEDNN_MAX_CPU_ISA`, when set: oneDNN uses nothing above it.
        public var oneDNNMaxISA: String?

        public init(avx512BF16: Bool, amxBF16: Bool, oneDNNMaxISA: String?) {
            self.avx512BF16 = avx512BF16
            self.amxBF16 = amxBF16
            self.oneDNNMaxISA = oneDNNMaxISA
        }

        /// This machine's, and the environment's cap.
        public static var current: CPUFeatures {
            CPUFeatures(avx512BF16: lw_cpu_has_avx512_bf16() != 0, amxBF16: lw_cpu_has_amx_bf16() != 0,
                        oneDNNMaxISA: ProcessInfo.processInfo.environment["ONEDNN_MAX_CPU_ISA"]
                            ?? ProcessInfo.processInfo.environment["DNNL_MAX_CPU_ISA"])
        }

        /// oneDNN's ISA names (2.6) that include AVX512_BF16 instructions.
        static let bf16ISAs: Set<String> = ["avx512_core_bf16", "avx512_core_amx", "all"]

        /// Whether the cap (if any) leaves oneDNN its bf16 kernels.
        var capAllowsBF16: Bool {
            guard let cap = oneDNNMaxISA else { return true }
            return ComputePrecision.CPUFeatures.bf16ISAs.contains(cap.lowercased())
        }
    }

    /// Why this precision cannot run here, as a sentence naming the flag (nil: it can).
    public func refusal(features: CPUFeatures = .current) -> String? {
        switch self {
        case .fp32:
            return nil
        case .bf16:
            if !features.avx512BF16 && !features.amxBF16 {
                return "--precision bf16 needs a CPU with AVX512_BF16 or AMX-BF16 instructions; this one has neither"
                    + " (use --precision fp32)"
            }
            if !features.capAllowsBF16 {
                return "--precision bf16: ONEDNN_MAX_CPU_ISA=\(features.oneDNNMaxISA!) keeps oneDNN below AVX512_CORE_BF16,"
                    + " so it has no bf16 convolutions here (unset it, or use --precision fp32)"
            }
            return "--precision bf16: this CPU has AVX512_BF16 or AMX-BF16, but this build has no bf16 convolutions yet"
                + " (use --precision fp32)"
        }
    }
}
