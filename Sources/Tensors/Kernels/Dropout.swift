import Randomness

/// Inverted dropout whose mask is a pure function of a seed: the forward and the backward
/// regenerate the same mask, so no mask is stored between them.
public enum Dropout {
    /// x <- x * mask / (1 - p), mask ~ Bernoulli(1 - p) drawn from `seed`. Also the backward:
    /// applied to a gradient with the same seed it multiplies by the same mask / (1 - p).
    /// `channelSize` > 1 drops whole channels of that many contiguous elements (conv dropout).
    /// `firstGroup` > 0 makes x the groups firstGroup..< of a larger tensor (rows of a batch
    /// seen a chunk at a time): the mask is that tensor's mask over these groups, since the
    /// generator draws one value per group, in order, and is advanced past the earlier ones.
    public static func apply(_ x: Tensor, p: Float, seed: UInt64, channelSize: Int = 1, firstGroup: Int = 0) {
        guard p > 0 else { return }
        let keepScale = 1 / (1 - p)
        var rng = Xoshiro256(seed: seed)
        for _ in 0..<firstGroup { _ = rng.nextFloat() }
        let ptr = x.pointer
        let groups = x.count / channelSize
        if channelSize == 1 {
            // Element dropout (the mlp's hand-off): the same draws and the same mask as the loop
            // below, without its per-element inner loop and branch. nextFloat() >= p compares
            // (next() >> 40) * 2^-24 with p, which is exactly (next() >> 40) >= ceil(p * 2^24).
            let threshold = UInt64((Double(p) * 16_777_216).rounded(.up))
            for i in 0..<groups {
                let keep = rng.next() >> 40 >= threshold
                ptr[i] = keep ? ptr[i] * keepScale : 0
            }
            return
        }
        for g in 0..<groups {
            let keep = rng.nextFloat() >= p
            let base = ptr + g &* channelSize
            if keep {
                for i in 0..<channelSize { base[i] *= keepScale }
            } else {
                base.update(repeating: 0, count: channelSize)
            }
        }
    }
}
