import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// Inverted dropout with a seeded mask that the backward regenerates.
final class DropoutTests: XCTestCase {
    func testKeptFractionAndScale() {
        let n = 20_000, p: Float = 0.3
        let t = zeros([n])
        t.fill(1)
        Dropout.apply(t, p: p, seed: 7)
        let values = t.array
        let kept = values.filter { $0 != 0 }
        // Every kept element is scaled by 1/(1-p); every other one is exactly 0.
        XCTAssertTrue(kept.allSatisfy { abs(Double($0) - 1 / 0.7) < 1e-6 }, "kept values are \(Set(kept))")
        // Binomial(20000, 0.7): standard deviation ~65, so +-0.015 is more than 4 sigma.
        XCTAssertEqual(Double(kept.count) / Double(n), 0.7, accuracy: 0.015)
    }

    /// The element path compares integer draws with a threshold; it must keep exactly the
    /// elements that `nextFloat() >= p` keeps, including p on a 2^-24 grid point.
    func testElementMaskIsNextFloatAtLeastP() {
        for p: Float in [0.025, 0.1, 0.5, 0.75, Float(3) / 16_777_216] {
            let n = 5_000
            let t = zeros([n])
            t.fill(1)
            Dropout.apply(t, p: p, seed: 31)
            var rng = Xoshiro256(seed: 31)
            let expected = (0..<n).map { _ in rng.nextFloat() >= p ? 1 / (1 - p) : 0 }
            XCTAssertEqual(t.array, expected, "p = \(p)")
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
            XCTAssertTrue(group.allSatisfy { abs(Double($0) - 2 / 0.75) < 1e-6 }, "channel \(c) partly dropped: \(Array(group))")
            keptChannels += 1
        }
        // Binomial(400, 0.75): sd ~8.7
        XCTAssertEqual(Double(keptChannels) / Double(channels), 0.75, accuracy: 0.1)
    }

    /// The backward is the same call on the gradient: L = sum(dropout(x) * R) is linear in x.
    func testBackwardWithSameSeedMatchesFiniteDifferences() {
        var random = TestRandom(seed: 73)
        let x = random.uniform(30), r = random.uniform(30)
        let seed: UInt64 = 1234, p: Float = 0.4
        func loss(_ v: [Double]) -> Double {
            let t = makeTensor([30], v)
            Dropout.apply(t, p: p, seed: seed)
            return dot(t.doubles, r)
        }
        let grad = makeTensor([30], r)
        Dropout.apply(grad, p: p, seed: seed)
        let numeric = numericalGradient(at: x, step: 0.25, loss)
        XCTAssertTrue(grad.array.contains(0), "the mask drops nothing: the check would not see a wrong mask")
        assertGradientsMatch(grad.doubles, numeric, "dropout")
        assertMutationDetected(grad.doubles, numeric, "dropout")
    }
}
