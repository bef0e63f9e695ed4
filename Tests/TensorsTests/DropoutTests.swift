import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// Inverted dropout with a seeded mask that the backward regenerates. A kept value is one
/// correctly rounded product with the Float32 1 / (1 - p) (itself two roundings): compared with
/// a rounding model (`Rounded`). The kept fractions are binomial: their tolerances are a number
/// of standard deviations.
final class DropoutTests: XCTestCase {
    /// v / (1 - p) as the kernel computes it: v times the Float32 1 / (1 - p).
    static func kept(_ v: Double, p: Float) -> Rounded {
        Rounded(exact: v) * (Rounded(exact: 1) / (Rounded(exact: 1) - Rounded(exact: Double(p))))
    }

    /// 4.5 standard deviations of the kept fraction of `n` Bernoulli(keep) draws: a seed fails
    /// it with probability below 1e-5.
    static func fractionTolerance(n: Int, keep: Double) -> Double { 4.5 * (keep * (1 - keep) / Double(n)).squareRoot() }

    func testKeptFractionAndScale() {
        let n = 20_000, p: Float = 0.3
        let t = zeros([n])
        t.fill(1)
        Dropout.apply(t, p: p, seed: 7)
        let values = t.array
        let kept = values.filter { $0 != 0 }
        // Every kept element is scaled by 1/(1-p); every other one is exactly 0.
        assertWithinBound(kept.map(Double.init), Array(repeating: Self.kept(1, p: p), count: kept.count), "kept values")
        // Broken variant: kept values scaled by 1/p.
        assertBoundCatches([1 / Double(p)], [Self.kept(1, p: p)], "kept values scaled by 1/p")
        // Binomial(20000, 0.7).
        XCTAssertEqual(Double(kept.count) / Double(n), 0.7, accuracy: Self.fractionTolerance(n: n, keep: 0.7))
        // Broken variant: a mask keeping with probability 0.65 (p misread by 0.05) is told apart.
        XCTAssertGreaterThan(0.05, 2 * Self.fractionTolerance(n: n, keep: 0.7), "the tolerance could not tell p = 0.3 from 0.35")
    }

    /// The mask is the definition: element i is kept when the i-th output of the counter-based
    /// SplitMix64 stream, as a 24-bit uniform u = (bits >> 40) 2^-24, is at least p (the kernel
    /// compares integers), including p on a 2^-24 grid point.
    func testElementMaskIsTheCounterStreamAtLeastP() {
        for p: Float in [0.025, 0.1, 0.5, 0.75, Float(3) / 16_777_216] {
            let n = 5_000
            let t = zeros([n])
            t.fill(1)
            Dropout.apply(t, p: p, seed: 31)
            let expected = (0..<n).map { i -> Float in
                let u = Float(Xoshiro256.splitMix64(seed: 31, index: UInt64(i)) >> 40) * 0x1p-24
                return u >= p ? 1 / (1 - p) : 0
            }
            XCTAssertEqual(t.array, expected, "p = \(p)")
        }
    }

    /// A batch seen a chunk at a time (`firstGroup`) gets exactly the whole batch's mask, for
    /// elements and for whole channels; a chunk that forgets its offset does not.
    func testChunksGetTheWholeTensorsMask() {
        for channelSize in [1, 9] {
            let rows = 10, perRow = 4 * channelSize
            let whole = zeros([rows, perRow])
            whole.fill(1)
            Dropout.apply(whole, p: 0.4, seed: 77, channelSize: channelSize)
            var chunked: [Float] = [], forgetful: [Float] = []
            for range in [0..<3, 3..<7, 7..<10] {
                let chunk = zeros([range.count, perRow])
                chunk.fill(1)
                Dropout.apply(chunk, p: 0.4, seed: 77, channelSize: channelSize, firstGroup: range.lowerBound * perRow / channelSize)
                chunked += chunk.array
                let wrong = zeros([range.count, perRow])
                wrong.fill(1)
                Dropout.apply(wrong, p: 0.4, seed: 77, channelSize: channelSize)
                forgetful += wrong.array
            }
            XCTAssertEqual(chunked, whole.array, "channel size \(channelSize)")
            XCTAssertNotEqual(forgetful, whole.array, "channel size \(channelSize): the offset matters")
        }
    }

    func testZeroProbabilityIsIdentity() {
        var random = TestRandom(seed: 71)
        let x = random.uniform(50)
        let t = makeTensor([50], x)
        Dropout.apply(t, p: 0, seed: 1)
        XCTAssertEqual(t.doubles, x)
    }

    func testSameSeedSameMaskOtherSeedOtherMask() {
        var random = TestRandom(seed: 72)
        let x = random.uniform(200, 0.5, 1)  // no zeros, so the mask is visible
        let a = makeTensor([200], x), b = makeTensor([200], x), c = makeTensor([200], x)
        Dropout.apply(a, p: 0.5, seed: 99)
        Dropout.apply(b, p: 0.5, seed: 99)
        Dropout.apply(c, p: 0.5, seed: 100)
        XCTAssertEqual(a.array, b.array)
        XCTAssertNotEqual(a.array.map { $0 == 0 }, c.array.map { $0 == 0 })
    }

    func testWholeChannelModeDropsWholeChannels() {
        let channelSize = 6, channels = 400, p: Float = 0.25
        let t = zeros([channels, channelSize])
        t.fill(2)
        Dropout.apply(t, p: p, seed: 5, channelSize: channelSize)
        let v = t.array
        var keptChannels = 0
        for c in 0..<channels {
            let group = v[(c * channelSize)..<((c + 1) * channelSize)]
            if group.allSatisfy({ $0 == 0 }) { continue }
            assertWithinBound(group.map(Double.init), Array(repeating: Self.kept(2, p: p), count: channelSize), "channel \(c) partly dropped")
            keptChannels += 1
        }
        // Binomial(400, 0.75).
        XCTAssertEqual(Double(keptChannels) / Double(channels), 0.75, accuracy: Self.fractionTolerance(n: channels, keep: 0.75))
    }

    /// The backward is the same call on the gradient: L = sum(dropout(x) * R) is linear in x,
    /// dL/dx_i = R_i / (1 - p) where the forward kept x_i, else 0. The kernel's backward against
    /// that derivative's rounding model, with the mask read from the forward.
    func testBackwardWithSameSeedMatchesTheForwardsMask() {
        var random = TestRandom(seed: 73)
        let x = random.uniform(30, 0.5, 1), r = random.uniform(30)  // no zeros in x: the mask is visible
        let seed: UInt64 = 1234, p: Float = 0.4
        let y = makeTensor([30], x)
        Dropout.apply(y, p: p, seed: seed)
        let keptByForward = y.array.map { $0 != 0 }
        let grad = makeTensor([30], r)
        Dropout.apply(grad, p: p, seed: seed)
        XCTAssertTrue(keptByForward.contains(false), "the mask drops nothing: the check would not see a wrong mask")
        let expected = r.indices.map { keptByForward[$0] ? Self.kept(r[$0], p: p) : Rounded(exact: 0) }
        assertWithinBound(grad.doubles, expected, "dropout backward")
        // Broken variant: the backward drawing its own mask (another seed).
        let otherMask = makeTensor([30], r)
        Dropout.apply(otherMask, p: p, seed: seed + 1)
        assertBoundCatches(otherMask.doubles, expected, "a backward with another seed's mask")
    }
}
