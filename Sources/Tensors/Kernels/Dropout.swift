import Randomness

/// Inverted dropout whose mask is a pure function of a seed: the forward and the backward
/// regenerate the same mask, so no mask is stored between them.
public enum Dropout {
    /// x <- x * mask / (1 - p), mask ~ Bernoulli(1 - p) drawn from `seed`. Also the backward:
    /// applied to a gradient with the same seed it multiplies by the same mask / (1 - p).
    /// `channelSize` > 1 drops whole channels of that many contiguous elements (conv dropout).
    /// Group g (an element, or a channel of `channelSize` elements) is kept when the g-th output
    /// of the counter-based SplitMix64 stream of `seed`, as a 24-bit uniform, is at least p. So
    /// `firstGroup` > 0 makes x the groups firstGroup..< of a larger tensor (rows of a batch seen
    /// a chunk at a time) at no extra cost, and its mask is that tensor's mask over these groups
    /// by construction.
    public static func apply(_ x: Tensor, p: Float, seed: UInt64, channelSize: Int = 1, firstGroup: Int = 0) {
        guard p > 0 else { return }
        let keepScale = 1 / (1 - p)
        // u = (bits >> 40) 2^-24 >= p  <=>  bits >> 40 >= ceil(p 2^24): an integer compare.
        let threshold = UInt64((Double(p) * 16_777_216).rounded(.up))
        let ptr = x.pointer
        let groups = x.count / channelSize
        let first = UInt64(firstGroup)
        if channelSize == 1 {
            for i in 0..<groups {
                let keep = Xoshiro256.splitMix64(seed: seed, index: first &+ UInt64(i)) >> 40 >= threshold
                ptr[i] = keep ? ptr[i] * keepScale : 0
            }
            return
        }
        for g in 0..<groups {
            let keep = Xoshiro256.splitMix64(seed: seed, index: first &+ UInt64(g)) >> 40 >= threshold
            let base = ptr + g &* channelSize
            if keep {
                for i in 0..<channelSize { base[i] *= keepScale }
            } else {
                base.update(repeating: 0, count: channelSize)
            }
        }
    }
}
