import Randomness

/// The order in which an epoch visits the blocks: a seeded permutation of 0..<count (or the
/// identity when shuffling is off).
///
/// It is computed, not stored: a keyed Feistel network over the smallest even-bit domain that
/// holds `count`, with cycle walking to stay inside 0..<count. That makes the order O(1) in
/// memory whatever the dataset size (the loader's ledger bytes must not grow with the number of
/// blocks) and lets a resumed run jump to any position without rebuilding a table.
struct BlockOrder: Sendable {
    let count: Int
    private let identity: Bool
    private let halfBits: UInt64
    private let halfMask: UInt64
    private let keys: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

    /// Rounds of the Feistel network. Six keyed rounds with a full 64-bit mixer are far past the
    /// point where the output looks like a random permutation for shuffling purposes.
    private static let rounds = 6

    /// The identity order (shuffle off).
    init(sequential count: Int) {
        self.count = count
        identity = true
        halfBits = 1
        halfMask = 1
        keys = (0, 0, 0, 0, 0, 0)
    }

    /// A permutation seeded by `key` (derived from seed and epoch by the caller).
    init(count: Int, key: UInt64) {
        self.count = count
        identity = false
        var bits: UInt64 = 1
        // Domain 4^bits >= count: cycle walking then needs fewer than 4 steps on average.
        while (UInt64(1) << (2 * bits)) < UInt64(max(count, 1)) { bits += 1 }
        halfBits = bits
        halfMask = (UInt64(1) << bits) - 1
        var generator = Xoshiro256(seed: key)
        keys = (generator.next(), generator.next(), generator.next(),
                generator.next(), generator.next(), generator.next())
    }

    /// The block visited at `position` (0..<count).
    func block(at position: Int) -> Int {
        precondition(position >= 0 && position < count, "block order position out of range")
        if identity { return position }
        // The network is a bijection on 0..<4^bits; re-applying it until the value falls inside
        // 0..<count is a bijection on 0..<count (cycle walking).
        var x = UInt64(position)
        repeat { x = permute(x) } while x >= UInt64(count)
        return Int(x)
    }

    private func permute(_ x: UInt64) -> UInt64 {
        var left = x >> halfBits
        var right = x & halfMask
        for round in 0..<BlockOrder.rounds {
            let key: UInt64
            switch round {
            case 0: key = keys.0
            case 1: key = keys.1
            case 2: key = keys.2
            case 3: key = keys.3
            case 4: key = keys.4
            default: key = keys.5
            }
            var mixed = right ^ key
            let f = Xoshiro256.splitMix64(&mixed) & halfMask
            (left, right) = (right, left ^ f)
        }
        return (left << halfBits) | right
    }
}
