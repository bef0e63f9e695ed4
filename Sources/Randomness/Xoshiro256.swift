/// A seeded xoshiro256** generator (Blackman and Vigna), seeded through SplitMix64.
/// Its state is four words, so it can be saved in a checkpoint and restored exactly.
public struct Xoshiro256: Sendable, Equatable {
    @usableFromInline var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var s = seed
        s0 = Xoshiro256.splitMix64(&s)
        s1 = Xoshiro256.splitMix64(&s)
        s2 = Xoshiro256.splitMix64(&s)
        s3 = Xoshiro256.splitMix64(&s)
    }

    /// Restores a generator from a saved state; nil unless it is four words, not all zero.
    public init?(state: [UInt64]) {
        guard state.count == 4, state.contains(where: { $0 != 0 }) else { return nil }
        (s0, s1, s2, s3) = (state[0], state[1], state[2], state[3])
    }

    /// The four state words, for checkpoints.
    public var state: [UInt64] { [s0, s1, s2, s3] }

    /// One SplitMix64 step: also used on its own to derive independent seeds from (seed, epoch, ...).
    @inlinable
    public static func splitMix64(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The `index`-th output of the SplitMix64 stream started at `seed`, computed directly
    /// (the stream is counter-based: its state after n steps is seed + n gamma), so any element
    /// of a stream can be drawn without drawing the ones before it.
    @inlinable
    public static func splitMix64(seed: UInt64, index: UInt64) -> UInt64 {
        var x = seed &+ index &* 0x9E37_79B9_7F4A_7C15
        return splitMix64(&x)
    }

    /// A seed derived from several values (seed, epoch, position, ...), stable across platforms.
    public static func derive(_ parts: UInt64...) -> UInt64 {
        var h: UInt64 = 0x6A09_E667_F3BC_C908
        for p in parts {
            var x = h ^ p
            h = splitMix64(&x)
        }
        return h
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable
    func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inlinable
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    @inlinable
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform integer in 0..<bound without modulo bias (Lemire's method).
    @inlinable
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// Uniform in [low, high).
    @inlinable
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * nextFloat()
    }

    /// Fisher-Yates shuffle of a buffer with this generator's own bounded draws.
    public mutating func shuffle<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
        var i = buffer.count - 1
        while i > 0 {
            let j = next(below: i + 1)
            buffer.swapAt(i, j)
            i -= 1
        }
    }

    public mutating func shuffle<T>(_ array: inout [T]) {
        array.withUnsafeMutableBufferPointer { shuffle($0) }
    }
}
