import CKernels
import Foundation

/// The number format convolutions compute in (`--precision`). bf16 (bf16 operands, fp32
/// accumulation into fp32 outputs, fp32 master weights: `ConvEngine.dnnlBF16`) needs a CPU with
/// AVX512_BF16 or AMX-BF16 and oneDNN allowed to use it; elsewhere it is refused with a message
/// saying why: the missing CPU feature, or oneDNN's ISA cap where `ONEDNN_MAX_CPU_ISA` hides it.
public enum ComputePrecision: String, CaseIterable, Codable, Sendable {
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
        public var capAllowsBF16: Bool {
            guard let cap = oneDNNMaxISA else { return true }
            return ComputePrecision.CPUFeatures.bf16ISAs.contains(cap.lowercased())
        }
    }

    /// Why this precision cannot run here, as a sentence naming the flag (nil: it can).
    /// oneDNN's bf16 convolutions need `avx512_core_bf16` (AVX512_BF16) at least; with AMX they
    /// also use its tiles.
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
            return nil
        }
    }
}
