import CKernels

/// The optimizer loops over lean state (`lw_kernels.h`): 8-bit block-wise codes with an fp32
/// scale per block, and bfloat16 rounded stochastically from a counter-based hash.
extension ElementwiseKernels {
    /// Values per block of an 8-bit moment; the last block of a tensor may be partial.
    public static let quantizationBlock = Int(LW_QUANT_BLOCK)

    /// Blocks of an 8-bit moment of `count` values (one fp32 scale each).
    public static func quantizationBlocks(_ count: Int) -> Int { (count + quantizationBlock - 1) / quantizationBlock }

    /// Adam over `count` parameters whose first is at a block boundary: per block, dequantise m
    /// (signed code) and v (unsigned code), update in fp32 as `adam`, requantise.
    @inline(__always)
    public static func adamInt8(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                                mCodes: UnsafeMutablePointer<UInt8>, mScales: UnsafeMutablePointer<Float>,
                                vCodes: UnsafeMutablePointer<UInt8>, vScales: UnsafeMutablePointer<Float>, count: Int,
                                beta1: Float, beta2: Float, stepSize: Float, invSqrtBc2: Float, epsilon: Float, weightDecay: Float) {
        lw_adam_int8(w, g, mCodes, mScales, vCodes, vScales, count, beta1, beta2, stepSize, invSqrtBc2, epsilon, weightDecay)
    }

    /// SGD with momentum over `count` parameters from a block boundary, the buffer in signed codes.
    @inline(__always)
    public static func sgdInt8(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                               codes: UnsafeMutablePointer<UInt8>, scales: UnsafeMutablePointer<Float>, count: Int,
                               lr: Float, mu: Float, weightDecay: Float, first: Bool) {
        lw_sgd_int8(w, g, codes, scales, count, lr, mu, weightDecay, first ? 1 : 0)
    }

    /// Adam with bf16 moments over elements `offset..<offset+count` of a tensor (pointers at
    /// `offset`), rounded stochastically with the bits of (`key`, element index).
    @inline(__always)
    public static func adamBF16(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                                m: UnsafeMutablePointer<UInt16>, v: UnsafeMutablePointer<UInt16>, count: Int, offset: Int, key: UInt32,
                                beta1: Float, beta2: Float, stepSize: Float, invSqrtBc2: Float, epsilon: Float, weightDecay: Float) {
        lw_adam_bf16(w, g, m, v, count, offset, key, beta1, beta2, stepSize, invSqrtBc2, epsilon, weightDecay)
    }

    /// SGD with momentum with a bf16 buffer, as `adamBF16`.
    @inline(__always)
    public static func sgdBF16(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                               momentum buf: UnsafeMutablePointer<UInt16>, count: Int, offset: Int, key: UInt32,
                               lr: Float, mu: Float, weightDecay: Float, first: Bool) {
        lw_sgd_bf16(w, g, buf, count, offset, key, lr, mu, weightDecay, first ? 1 : 0)
    }

    /// The rounding key of one (seed, step): every element's random bits derive from it.
    public static func stochasticKey(seed: UInt32, step: Int) -> UInt32 { lw_stochastic_key(seed, UInt64(step)) }

    /// The 32 random bits of element `index` under `key` (the low 16 round m, the high 16 v).
    public static func stochasticBits(key: UInt32, index: Int) -> UInt32 { lw_stochastic_bits(key, index) }

    /// bf16 bits of `x`, rounded stochastically with 16 random bits.
    public static func bf16Stochastic(_ x: Float, random16: UInt32) -> UInt16 { lw_bf16_round_stochastic(x, random16) }

    /// The value of bf16 bits.
    public static func bf16Value(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// bf16 bits of `x` rounded to nearest, ties to even (for conversions; the optimizer rounds
    /// stochastically).
    public static func bf16Nearest(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    /// Quantises one block (at most `quantizationBlock` values) into codes; returns its scale.
    /// `signed`: first moments (sign and square-root code); else second moments (fourth root).
    public static func quantize(_ x: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>, count: Int, signed: Bool) -> Float {
        precondition(count <= quantizationBlock)
        return signed ? lw_quantize_signed(x, codes, count) : lw_quantize_unsigned(x, codes, count)
    }

    /// Dequantises one block: x[i] = scale * value(codes[i]).
    public static func dequantize(_ codes: UnsafePointer<UInt8>, scale: Float, into x: UnsafeMutablePointer<Float>, count: Int, signed: Bool) {
        if signed { lw_dequantize_signed(codes, scale, x, count) } else { lw_dequantize_unsigned(codes, scale, x, count) }
    }

    /// The fraction of its block's scale that a code stands for.
    public static func codeValue(_ code: UInt8, signed: Bool) -> Float {
        signed ? lw_quant_signed_value(code) : lw_quant_unsigned_value(code)
    }
}
