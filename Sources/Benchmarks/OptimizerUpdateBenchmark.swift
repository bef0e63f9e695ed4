import Foundation
import Layers
import MemoryLedger
import Randomness
import Tensors

/// The optimizer's update per parameter in each state format (fp32, bf16, int8), Adam and SGD,
/// over the mlp's parameter tensors (3 x 1024 hidden units on 784 inputs, 2.9M values): the
/// formats run interleaved repeat by repeat, so all see the same load from other processes,
/// and the report gives medians and each format's time over fp32's.
public enum OptimizerUpdateBenchmark {
    public struct Row: Codable, Sendable {
        public var kind: String
        public var format: String
        /// Median nanoseconds per parameter of one optimizer step.
        public var nanosecondsPerParameter: Double
        /// This format's median time over fp32's (same optimizer kind).
        public var overFP32: Double
    }

    /// The mlp's trained tensors (weights, biases, BatchNorm weights and biases, output layer).
    static let tensorSizes: [Int] = [1024 * 784, 1024, 1024, 1024] + [Int](repeating: 0, count: 2).flatMap { _ in
        [1024 * 1024, 1024, 1024, 1024]
    } + [10 * 1024, 10]

    public static func run(repeats: Int = 7, secondsPerRepeat: Double = 0.1) -> [Row] {
        var rows: [Row] = []
        for kind in OptimizerKind.allCases {
            let ledger = Ledger(eventCapacity: 0)
            var rng = Xoshiro256(seed: 1)
            let setups = OptimizerStateFormat.allCases.map { format -> Optimizer in
                let parameters = tensorSizes.enumerated().map { i, n -> Parameter in
                    let p = Parameter(name: "p\(i)", shape: [n], category: .weights, layer: 0, label: "bench.w", ledger: ledger)
                    p.initUniform(bound: 0.05, rng: &rng)
                    let g = p.makeGrad()
                    for k in 0..<n { g.pointer[k] = rng.uniform(-1e-2, 1e-2) }
                    return p
                }
                var s = OptimizerSettings()
                s.kind = kind
                s.stateFormat = format
                let opt = Optimizer(parameters, settings: s, ledger: ledger)
                opt.step(lr: 1e-4)  // warm: pages touched, first-step branches taken
                return opt
            }
            let iterations = BenchmarkClock.iterations(toFill: secondsPerRepeat) { setups[0].step(lr: 1e-4) }
            var times = [[Double]](repeating: [], count: setups.count)
            for _ in 0..<repeats {
                for (i, opt) in setups.enumerated() {
                    times[i].append(BenchmarkClock.time { for _ in 0..<iterations { opt.step(lr: 1e-4) } } / Double(iterations))
                }
            }
            let count = Double(tensorSizes.reduce(0, +))
            let medians = times.map(BenchmarkClock.median)
            for (i, format) in OptimizerStateFormat.allCases.enumerated() {
                rows.append(Row(kind: kind.rawValue, format: format.rawValue, nanosecondsPerParameter: medians[i] / count * 1e9,
                                overFP32: medians[i] / medians[0]))
            }
        }
        return rows
    }

    public static func table(_ rows: [Row], repeats: Int) -> String {
        var lines = ["optimizer update benchmark: \(tensorSizes.reduce(0, +)) parameters (the mlp), kernels \(KernelPath.current.rawValue), cores \(ProcessorCount.online), median of \(repeats) repeats",
                     "optimizer  state  ns/parameter  time / fp32"]
        for r in rows {
            func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
            lines.append(pad(r.kind, 9) + "  " + pad(r.format, 5) + String(format: "  %12.3f  %11.2f", r.nanosecondsPerParameter, r.overFP32))
        }
        return lines.joined(separator: "\n")
    }
}
