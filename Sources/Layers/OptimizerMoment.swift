import MemoryLedger
import Tensors

/// One optimizer moment of one parameter, in its stored format, booked as `optimizerState`.
public final class OptimizerMoment {
    public enum Storage {
        case fp32(Tensor)
        /// bfloat16 bits (the top half of an fp32).
        case bf16(TrackedBuffer<UInt16>)
        /// One code a value and one fp32 scale per block of `ElementwiseKernels.quantizationBlock`.
        case int8(codes: TrackedBuffer<UInt8>, scales: TrackedBuffer<Float>)
    }

    public let storage: Storage
    public let shape: [Int]
    public let count: Int
    /// First moments (m, momentum) take signed values; Adam's v is never negative and has its
    /// own code.
    public let isSigned: Bool

    public var format: OptimizerStateFormat {
        switch storage {
        case .fp32: return .fp32
        case .bf16: return .bf16
        case .int8: return .int8
        }
    }

    /// A zero moment (every format's zero is all-zero bits).
    public init(shape: [Int], format: OptimizerStateFormat, signed: Bool, layer: Int, ledger: Ledger) {
        self.shape = shape
        count = shape.reduce(1, *)
        isSigned = signed
        switch format {
        case .fp32:
            storage = .fp32(Tensor(shape, .optimizerState, layer: layer, label: "optimizer.moment", ledger: ledger))
        case .bf16:
            let b = TrackedBuffer<UInt16>(count: count, category: .optimizerState, layer: layer, label: "optimizer.bf16", ledger: ledger)
            b.pointer.initialize(repeating: 0, count: count)
            storage = .bf16(b)
        case .int8:
            let codes = TrackedBuffer<UInt8>(count: count, category: .optimizerState, layer: layer, label: "optimizer.codes", ledger: ledger)
            codes.pointer.initialize(repeating: 0, count: count)
            let blocks = ElementwiseKernels.quantizationBlocks(count)
            let scales = TrackedBuffer<Float>(count: blocks, category: .optimizerState, layer: layer, label: "optimizer.scales", ledger: ledger)
            scales.pointer.initialize(repeating: 0, count: blocks)
            storage = .int8(codes: codes, scales: scales)
        }
    }

    /// The fp32 tensor of an fp32 moment (nil in the lean formats).
    public var fp32: Tensor? { if case .fp32(let t) = storage { return t } else { return nil } }

    /// The moment's values as fp32 (decoded one block at a time into the returned array).
    public func values() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { o in
            switch storage {
            case .fp32(let t): o.baseAddress!.update(from: t.pointer, count: count)
            case .bf16(let b): for i in 0..<count { o[i] = ElementwiseKernels.bf16Value(b.pointer[i]) }
            case .int8(let codes, let scales):
                let block = ElementwiseKernels.quantizationBlock
                for (k, start) in stride(from: 0, to: count, by: block).enumerated() {
                    ElementwiseKernels.dequantize(codes.pointer + start, scale: scales.pointer[k], into: o.baseAddress! + start,
                                                  count: min(block, count - start), signed: isSigned)
                }
            }
        }
        return out
    }

    /// Stores fp32 `values` in this moment's format (a checkpoint of another format): bf16 rounds
    /// to nearest, int8 quantises block by block.
    public func assign(_ values: UnsafeBufferPointer<Float>) {
        precondition(values.count == count, "moment of \(count) values assigned \(values.count)")
        switch storage {
        case .fp32(let t): t.pointer.update(from: values.baseAddress!, count: count)
        case .bf16(let b): for i in 0..<count { b.pointer[i] = ElementwiseKernels.bf16Nearest(values[i]) }
        case .int8(let codes, let scales):
            let block = ElementwiseKernels.quantizationBlock
            for (k, start) in stride(from: 0, to: count, by: block).enumerated() {
                scales.pointer[k] = ElementwiseKernels.quantize(values.baseAddress! + start, into: codes.pointer + start,
                                                                count: min(block, count - start), signed: isSigned)
            }
        }
    }

    /// Bytes booked for this moment.
    public var byteCount: Int { format.momentBytes(count: count) }
}
