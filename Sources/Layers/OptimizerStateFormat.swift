import Tensors

/// How an optimizer stores its moments (Adam's m and v, SGD's momentum buffer).
/// - `fp32`: one Float each (4 bytes a value).
/// - `bf16`: bfloat16 (2 bytes), rounded stochastically: under round-to-nearest 0.999 v rounds
///   back to v once v has more than 8 significant bits of history, so v would never decay.
/// - `int8`: block-wise quantisation (Dettmers et al., ICLR 2022): one byte a value plus one
///   fp32 scale per block of `ElementwiseKernels.quantizationBlock` values of a tensor.
public enum OptimizerStateFormat: String, Codable, Sendable, CaseIterable {
    case fp32, bf16, int8

    /// This format and the leaner ones, in order of size (what `--allow-lean-state` may pick).
    public var thisAndLeaner: [OptimizerStateFormat] {
        let all = OptimizerStateFormat.allCases
        return Array(all[all.firstIndex(of: self)!...])
    }

    /// Bytes of one moment of a tensor of `count` values in this format (codes and scales).
    public func momentBytes(count: Int) -> Int {
        switch self {
        case .fp32: return count * MemoryLayout<Float>.stride
        case .bf16: return count * MemoryLayout<UInt16>.stride
        case .int8: return count * MemoryLayout<UInt8>.stride + ElementwiseKernels.quantizationBlocks(count) * MemoryLayout<Float>.stride
        }
    }
}

extension OptimizerSettings {
    /// Moments kept per parameter: Adam's m and v, or SGD's momentum buffer.
    public var momentsPerParameter: Int { kind == .adam ? 2 : 1 }

    /// Bytes of optimizer state for parameter tensors of these element counts: what `Optimizer`
    /// allocates and the planner books (blocks are per tensor, so sizes are per tensor).
    public func stateBytes(parameters counts: [Int]) -> Int {
        momentsPerParameter * counts.reduce(0) { $0 + stateFormat.momentBytes(count: $1) }
    }
}
