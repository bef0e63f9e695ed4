import MemoryLedger
import Randomness
import Tensors

/// Seeded random test data. Values are rounded to Float32 as they are drawn, so a Float64
/// reference sees exactly the inputs the Float32 kernel sees.
public struct TestRandom {
    public var rng: Xoshiro256

    public init(seed: UInt64) { rng = Xoshiro256(seed: seed) }

    /// n values uniform in [low, high), rounded to Float.
    public mutating func uniform(_ n: Int, _ low: Double = -1, _ high: Double = 1) -> [Double] {
        (0..<n).map { _ in Double(Float(low + (high - low) * rng.nextDouble())) }
    }

    /// n values with |v| in [margin, 1] and a random sign: keeps kinks (ReLU at 0) out of reach
    /// of a finite-difference step smaller than `margin`.
    public mutating func awayFromZero(_ n: Int, margin: Double) -> [Double] {
        (0..<n).map { _ in
            let magnitude = margin + (1 - margin) * rng.nextDouble()
            return Double(Float(rng.nextDouble() < 0.5 ? -magnitude : magnitude))
        }
    }

    /// n labels in 0..<classes.
    public mutating func labels(_ n: Int, classes: Int) -> [Int32] {
        (0..<n).map { _ in Int32(rng.next(below: classes)) }
    }
}

/// A tensor with the given shape and values (rounded to Float).
public func makeTensor(_ shape: [Int], _ values: [Double], _ category: Category = .activations) -> Tensor {
    let t = Tensor(shape, category, label: "test", zeroed: false)
    t.copy(from: values.map { Float($0) })
    return t
}

/// A zeroed tensor.
public func zeros(_ shape: [Int]) -> Tensor { Tensor(shape, .activations, label: "test") }

extension Tensor {
    /// The elements widened to Double.
    public var doubles: [Double] { array.map { Double($0) } }
}

/// Elementwise difference a - b.
public func subtract(_ a: [Double], _ b: [Double]) -> [Double] {
    precondition(a.count == b.count)
    return zip(a, b).map { $0 - $1 }
}

public func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

public func maxAbs(_ v: [Double]) -> Double { v.reduce(0) { max($0, abs($1)) } }

/// sum_i a_i b_i
public func dot(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    return zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
}
