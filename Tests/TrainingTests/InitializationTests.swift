import Foundation
import Layers
import MemoryLedger
import Tensors
@testable import Training
import XCTest

/// Every tensor a network starts with, by checkpoint name, against its initialisation rule
/// (DESIGN.md section 2): exact zeros and ones where the rule says so; for PyTorch's default
/// uniform(-b, b) with b = 1/sqrt(fan_in), the largest magnitude, the mean and the second moment
/// within limits derived from the tensor's size, so that a changed rule (another bound, a zero
/// where a draw belongs, a draw where a zero belongs) fails.
final class InitializationTests: XCTestCase {
    enum Rule: Equatable {
        case zeros, ones
        /// uniform(-b, b), b = 1/sqrt(fanIn)
        case uniform(fanIn: Int)
    }

    /// fan_in of a weight (out, in...) is the product of all but its first dimension.
    static func fanIn(_ shape: [Int]) -> Int { shape.dropFirst().reduce(1, *) }

    /// The rule for each tensor name, from DESIGN.md section 2 (not from the code).
    static func rule(_ name: String, shapes: [String: [Int]], local: Bool) -> Rule? {
        let parts = name.split(separator: ".").map(String.init)
        if name.hasPrefix("optimizer.") { return .zeros }
        func sibling(_ weight: String) -> Rule { .uniform(fanIn: fanIn(shapes[weight]!)) }
        switch (parts.first!, parts.dropFirst(2).joined(separator: ".")) {
        case ("blocks", "linear.weight"), ("blocks", "conv.weight"), ("blocks", "sim.weight"),
             ("blocks", "bpf.projection"), ("blocks", "bpf.feedback"):
            return .uniform(fanIn: fanIn(shapes[name]!))
        case ("blocks", "linear.bias"), ("blocks", "conv.bias"), ("blocks", "pred.bias"):
            return sibling(name.replacingOccurrences(of: ".bias", with: ".weight"))
        case ("blocks", "bn.weight"), ("blocks", "bn.running_var"): return .ones
        case ("blocks", "bn.bias"), ("blocks", "bn.running_mean"): return .zeros
        case ("blocks", "pred.weight"): return .zeros  // the local classifier starts at zero
        case ("blocks", "bpf.decoder.weight"), ("blocks", "bpf.decoder.bias"): return .zeros  // the feedback-alignment decoder: both zero
        case ("output", _) where parts[1] == "weight": return local ? .zeros : sibling(name)
        case ("output", _) where parts[1] == "bias": return sibling("output.weight")
        default: return nil
        }
    }

    /// Checks `values` against uniform(-b, b). With n draws: P(max|w| < c b) = c^n, so the
    /// largest magnitude must reach b 1e-9^(1/n) (0.95 b from n = 404 on); the mean has standard
    /// deviation b/sqrt(3n) and the mean square (expectation b^2/3) b^2 sqrt(4/(45n)); both
    /// must lie within 6 standard deviations.
    static func uniformViolation(_ values: [Float], bound b: Double) -> String? {
        let n = Double(values.count)
        let magnitudes = values.map { abs(Double($0)) }
        let largest = magnitudes.max() ?? 0
        if largest > b * (1 + 1e-6) { return "max |w| \(largest) above the bound \(b)" }
        let lowest = b * Foundation.pow(1e-9, 1 / n)
        if largest < lowest { return "max |w| \(largest) below \(lowest) (bound \(b), n \(Int(n)))" }
        let mean = values.reduce(0.0) { $0 + Double($1) } / n
        if abs(mean) > 6 * b / (3 * n).squareRoot() { return "mean \(mean) too far from 0 (bound \(b), n \(Int(n)))" }
        let meanSquare = values.reduce(0.0) { $0 + Double($1) * Double($1) } / n
        if abs(meanSquare - b * b / 3) > 6 * b * b * (4 / (45 * n)).squareRoot() {
            return "mean square \(meanSquare), expected \(b * b / 3) (n \(Int(n)))"
        }
        return nil
    }

    static func violation(_ values: [Float], _ rule: Rule) -> String? {
        switch rule {
        case .zeros: return values.allSatisfy { $0 == 0 } ? nil : "not all zero"
        case .ones: return values.allSatisfy { $0 == 1 } ? nil : "not all one"
        case .uniform(let fanIn): return uniformViolation(values, bound: 1 / Double(fanIn).squareRoot())
        }
    }

    func check(_ spec: ModelSpec, file: StaticString = #filePath, line: UInt = #line) {
        let network = Network(spec: spec, seed: 11, ledger: Ledger())
        let tensors = Checkpoint.namedTensors(network)
        let shapes = Dictionary(uniqueKeysWithValues: tensors.map { ($0.0, $0.1.shape) })
        XCTAssertGreaterThan(tensors.count, 0, file: file, line: line)
        for (name, tensor) in tensors {
            guard let rule = Self.rule(name, shapes: shapes, local: spec.loss.isLocal) else {
                XCTFail("\(spec.kind) \(spec.loss): no initialisation rule for \(name)", file: file, line: line)
                continue
            }
            if let problem = Self.violation(tensor.array, rule) {
                XCTFail("\(spec.kind) \(spec.loss): \(name) \(tensor.shape) \(rule): \(problem)", file: file, line: line)
            }
        }
    }

    func testEveryTensorOfTheMLPStartsByItsRuleForEveryLoss() {
        for loss in LossKind.allCases {
            var spec = ModelSpec()
            spec.numHidden = 256
            spec.numLayers = 2
            spec.loss = loss
            check(spec)
        }
    }

    func testEveryTensorOfAConvNetStartsByItsRuleForEveryLoss() {
        for loss in LossKind.allCases {
            var spec = ModelSpec()
            spec.kind = .vgg8b
            spec.featMult = 1 / 8
            spec.numHidden = 128
            spec.dimInDecoder = 256
            spec.loss = loss
            check(spec)
        }
    }

    /// A seeded SplitMix64 stream of uniform(-b, b) Floats.
    static func draws(_ n: Int, bound b: Double, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<n).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(b * (2 * Double(z >> 11) / Double(1 << 53) - 1))
        }
    }

    /// The checks fail for a changed rule: a bound of 1/sqrt(2 fan_in) (from 128 values on; 10
    /// draws cannot tell b from b/sqrt 2 apart with certainty), a zero tensor where a draw
    /// belongs, and a draw where a zero belongs.
    func testTheChecksCatchAChangedRule() {
        for (i, n) in [10, 128, 1024, 65536].enumerated() {
            let b = 1 / Double(n).squareRoot()
            let right = Self.draws(n, bound: b, seed: UInt64(i + 1))
            XCTAssertNil(Self.violation(right, .uniform(fanIn: n)), "n \(n): a right draw passes")
            if n >= 128 {
                XCTAssertNotNil(Self.violation(right.map { $0 / Float(2).squareRoot() }, .uniform(fanIn: n)), "n \(n): bound / sqrt 2")
            }
            XCTAssertNotNil(Self.violation([Float](repeating: 0, count: n), .uniform(fanIn: n)), "n \(n): zeros for a draw")
            XCTAssertNotNil(Self.violation(right, .zeros), "n \(n): a draw for zeros")
        }
    }
}
