import XCTest
import Randomness

final class RandomnessTests: XCTestCase {
    // Expected values were obtained by compiling the reference C code with gcc and printing its
    // output: splitmix64.c and xoshiro256starstar.c by Blackman and Vigna (prng.di.unimi.it),
    // the state seeded as s[i] = splitmix64() for i = 0...3 from the given seed, e.g.
    //   static uint64_t sm;  uint64_t splitmix64(void) { uint64_t z = (sm += 0x9e3779b97f4a7c15);
    //     z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9; z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    //     return z ^ (z >> 31); }
    //   uint64_t next(void) { const uint64_t result = rotl(s[1] * 5, 7) * 9; const uint64_t t = s[1] << 17;
    //     s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    //     return result; }
    // (splitmix64 from 0 gives e220a8397b1dcdaf first, matching its published test vector.)
    private let reference: [(seed: UInt64, state: [UInt64], outputs: [UInt64])] = [
        (0, [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec],
         [0x99ec5f36cb75f2b4, 0xbf6e1f784956452a, 0x1a5f849d4933e6e0,
          0x6aa594f1262d2d2c, 0xbba5ad4a1f842e59, 0xffef8375d9ebcaca]),
        (42, [0xbdd732262feb6e95, 0x28efe333b266f103, 0x47526757130f9f52, 0x581ce1ff0e4ae394],
         [0x15780b2e0c2ec716, 0x6104d9866d113a7e, 0xae17533239e499a1,
          0xecb8ad4703b360a1, 0xfde6dc7fe2ec5e64, 0xc50da53101795238]),
        (0xDEAD_BEEF_CAFE_BABE, [0x0d7d93560d1929d2, 0x491dfb740e50d43f, 0x42722bf4473e5e7d, 0xd6ca8a0790fffc45],
         [0x2299b3421aa78b66, 0x9af6550483e02887, 0xda059cb5eec5c979,
          0xcf86bd29360fff98, 0x5cc883c940089820, 0xb00610aced04900f]),
    ]

    func testSeedingAndFirstOutputsMatchTheReferenceImplementation() {
        for vector in reference {
            var rng = Xoshiro256(seed: vector.seed)
            XCTAssertEqual(rng.state, vector.state, "state after seeding with \(vector.seed)")
            let outputs = (0..<vector.outputs.count).map { _ in rng.next() }
            XCTAssertEqual(outputs, vector.outputs, "outputs for seed \(vector.seed)")
        }
    }

    func testSplitMix64MatchesItsPublishedFirstOutput() {
        var x: UInt64 = 0
        XCTAssertEqual(Xoshiro256.splitMix64(&x), 0xe220a8397b1dcdaf)
        XCTAssertEqual(Xoshiro256.splitMix64(&x), 0x6e789e6aa1b965f4)
    }

    /// Pearson's chi-square statistic of `counts` against a uniform expectation.
    private func chiSquare(_ counts: [Int]) -> Double {
        let expected = Double(counts.reduce(0, +)) / Double(counts.count)
        return counts.reduce(0.0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
    }

    func testBoundedDrawsAreUniformOverTenBuckets() {
        var rng = Xoshiro256(seed: 7)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[rng.next(below: 10)] += 1 }
        // 9 degrees of freedom: P(chi2 > 27.88) = 0.001. The seed is fixed, so this is not flaky.
        XCTAssertLessThan(chiSquare(counts), 27.88, "\(counts)")
    }

    /// For bound = 3 * 2^61, `next() % bound` would give the lower two thirds of the range 3/8
    /// each and the top third 2/8 (2^64 is not a multiple of the bound); the rejection step
    /// must remove that bias.
    func testBoundedDrawsHaveNoModuloBiasForALargeBound() {
        var rng = Xoshiro256(seed: 11)
        let third = 1 << 61
        var counts = [0, 0, 0]
        for _ in 0..<30_000 {
            let v = rng.next(below: 3 * third)
            XCTAssertTrue(v >= 0 && v < 3 * third)
            counts[v / third] += 1
        }
        // 2 degrees of freedom: P(chi2 > 13.82) = 0.001. Modulo bias would give about 750.
        XCTAssertLessThan(chiSquare(counts), 13.82, "\(counts)")
    }

    func testDrawsStayInRange() {
        var rng = Xoshiro256(seed: 3)
        for bound in [1, 2, 3, 7, 1000, Int.max] {
            for _ in 0..<2000 {
                let v = rng.next(below: bound)
                XCTAssertTrue(v >= 0 && v < bound, "\(v) for bound \(bound)")
            }
        }
        for _ in 0..<10_000 {
            let f = rng.nextFloat(), d = rng.nextDouble(), u = rng.uniform(-2, 3)
            XCTAssertTrue(f >= 0 && f < 1)
            XCTAssertTrue(d >= 0 && d < 1)
            XCTAssertTrue(u >= -2 && u <= 3)
        }
    }

    func testSavedStateReproducesTheStream() {
        var rng = Xoshiro256(seed: 2024)
        for _ in 0..<17 { _ = rng.next() }
        let saved = rng.state
        let expected = (0..<100).map { _ in rng.next() }
        guard var restored = Xoshiro256(state: saved) else { return XCTFail("a saved state must restore") }
        XCTAssertEqual((0..<100).map { _ in restored.next() }, expected)
        XCTAssertEqual(restored, rng)
    }

    func testRestoringRejectsAllZeroAndWrongLengthStates() {
        XCTAssertNil(Xoshiro256(state: [0, 0, 0, 0]))
        XCTAssertNil(Xoshiro256(state: [1, 2, 3]))
        XCTAssertNil(Xoshiro256(state: [1, 2, 3, 4, 5]))
        XCTAssertNotNil(Xoshiro256(state: [0, 0, 0, 1]))
    }

    func testShuffleIsAPermutationAndDependsOnTheSeed() {
        var a = Array(0..<1000), b = Array(0..<1000), c = Array(0..<1000)
        var r1 = Xoshiro256(seed: 5), r2 = Xoshiro256(seed: 5), r3 = Xoshiro256(seed: 6)
        r1.shuffle(&a); r2.shuffle(&b); r3.shuffle(&c)
        XCTAssertEqual(a.sorted(), Array(0..<1000))
        XCTAssertNotEqual(a, Array(0..<1000))
        XCTAssertEqual(a, b, "same seed, same order")
        XCTAssertNotEqual(a, c)
        var empty: [Int] = [], one = [9]
        r1.shuffle(&empty); r1.shuffle(&one)
        XCTAssertEqual(one, [9])
    }

    /// Every ordering of three elements must be equally likely (an off-by-one in Fisher-Yates
    /// makes some orderings impossible or twice as likely).
    func testShuffleMakesAllOrderingsEquallyLikely() {
        var rng = Xoshiro256(seed: 99)
        var counts: [[Int]: Int] = [:]
        for _ in 0..<60_000 {
            var x = [0, 1, 2]
            rng.shuffle(&x)
            counts[x, default: 0] += 1
        }
        XCTAssertEqual(counts.count, 6)
        // 5 degrees of freedom: P(chi2 > 20.52) = 0.001.
        XCTAssertLessThan(chiSquare(Array(counts.values)), 20.52, "\(counts)")
    }

    func testDerivedSeedsDependOnEveryPartAndTheirOrder() {
        XCTAssertEqual(Xoshiro256.derive(1, 2), Xoshiro256.derive(1, 2))
        XCTAssertNotEqual(Xoshiro256.derive(1, 2), Xoshiro256.derive(2, 1))
        XCTAssertNotEqual(Xoshiro256.derive(1, 2), Xoshiro256.derive(1, 3))
        XCTAssertNotEqual(Xoshiro256.derive(0), Xoshiro256.derive(0, 0))
    }
}
