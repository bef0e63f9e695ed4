import Foundation
import MemoryLedger
import Tensors

/// Measures the floor everything else stands on: GEMM throughput at the MLP's shapes through our
/// tensor wrapper against the BLAS called directly, and the memory ledger's cost, alone and
/// inside a training-like step. `layerwise bench foundation` runs it; see `tools/bench.sh`.
public enum FoundationBenchmark {
    public struct Configuration: Sendable {
        /// BLAS threads.
        public var threads: Int
        /// Timed repeats per measurement; the report gives medians.
        public var repeats: Int
        /// Seconds each timed repeat should last (more iterations for fast bodies).
        public var secondsPerRepeat: Double

        public init(threads: Int, repeats: Int = 7, secondsPerRepeat: Double = 0.08) {
            (self.threads, self.repeats, self.secondsPerRepeat) = (threads, repeats, secondsPerRepeat)
        }
    }

    /// A GEMM as the MLP issues it (batch 128, 784 inputs, 1024 hidden units).
    struct Shape {
        var name: String
        var m: Int, n: Int, k: Int
        var transA = false, transB = false
        /// A and B as stored, row-major.
        var storedA: [Int] { transA ? [k, m] : [m, k] }
        var storedB: [Int] { transB ? [n, k] : [k, n] }
    }

    static let shapes: [Shape] = [
        Shape(name: "fwd  y = x W1^T   (128,784)(1024,784)^T", m: 128, n: 1024, k: 784, transB: true),
        Shape(name: "fwd  y = h W^T    (128,1024)(1024,1024)^T", m: 128, n: 1024, k: 1024, transB: true),
        Shape(name: "bwd  dW1 = dY^T x (1024,128)(128,784)", m: 1024, n: 784, k: 128, transA: true),
        Shape(name: "bwd  dx = dY W1   (128,1024)(1024,784)", m: 128, n: 784, k: 1024),
        Shape(name: "bwd  dW = dY^T h  (1024,128)(128,1024)", m: 1024, n: 1024, k: 128, transA: true),
        Shape(name: "bwd  dh = dY W    (128,1024)(1024,1024)", m: 128, n: 1024, k: 1024),
        Shape(name: "square 1024^3", m: 1024, n: 1024, k: 1024),
    ]

    /// Runs every measurement and returns the medians.
    public static func run(_ configuration: Configuration) -> FoundationBenchmarkReport {
        BLAS.setThreads(configuration.threads)
        let gemm = shapes.map { measureGEMM($0, configuration) }
        let ledger = LedgerOverheadBenchmark.run(configuration)
        return FoundationBenchmarkReport(threads: BLAS.threads, repeats: configuration.repeats,
                                         elementwiseKernels: KernelPath.current.rawValue,
                                         openBLASCoreType: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "",
                                         gemm: gemm, ledger: ledger)
    }

    /// Times the same product through `BLAS.gemm(Tensor...)` on ledger tensors and through
    /// `BLAS.gemm(transA:...)` on posix_memalign buffers, interleaved repeat by repeat so both
    /// see the same load from other processes.
    static func measureGEMM(_ s: Shape, _ configuration: Configuration) -> FoundationBenchmarkReport.GEMM {
        let ledger = Ledger(eventCapacity: 0)
        let a = Tensor(s.storedA, .activations, label: "bench.a", ledger: ledger)
        let b = Tensor(s.storedB, .weights, label: "bench.b", ledger: ledger)
        let c = Tensor([s.m, s.n], .activations, label: "bench.c", ledger: ledger)
        fillDeterministic(a.buffer, seed: 1)
        fillDeterministic(b.buffer, seed: 2)

        let rawA = RawFloats(count: a.count), rawB = RawFloats(count: b.count), rawC = RawFloats(count: c.count)
        _ = rawA.buffer.update(fromContentsOf: a.buffer)
        _ = rawB.buffer.update(fromContentsOf: b.buffer)
        rawC.buffer.update(repeating: 0)
        let lda = s.storedA[1], ldb = s.storedB[1]

        let wrapper = { BLAS.gemm(a, b, into: c, transposeA: s.transA, transposeB: s.transB) }
        let direct = {
            BLAS.gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: rawA.pointer, lda: lda,
                      b: rawB.pointer, ldb: ldb, c: rawC.pointer, ldc: s.n)
        }
        wrapper(); direct()   // warm up: BLAS thread start-up and first-touch page faults
        let calls = BenchmarkClock.iterations(toFill: configuration.secondsPerRepeat, direct)
        var wrapperTimes: [Double] = [], directTimes: [Double] = []
        for r in 0..<configuration.repeats {
            let order = r % 2 == 0 ? [true, false] : [false, true]
            for useWrapper in order {
                let body = useWrapper ? wrapper : direct
                let t = BenchmarkClock.time { for _ in 0..<calls { body() } } / Double(calls)
                if useWrapper { wrapperTimes.append(t) } else { directTimes.append(t) }
            }
        }
        let flops = 2.0 * Double(s.m) * Double(s.n) * Double(s.k)
        return .init(name: s.name, m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB,
                     wrapperGFLOPS: flops / BenchmarkClock.median(wrapperTimes) / 1e9,
                     directGFLOPS: flops / BenchmarkClock.median(directTimes) / 1e9)
    }

    /// Values in [-1, 1) from a fixed LCG: no NaNs or denormals to slow the BLAS down, and the
    /// same data on every run.
    static func fillDeterministic(_ buffer: UnsafeMutableBufferPointer<Float>, seed: UInt64) {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        for i in buffer.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer[i] = Float(Int64(state >> 40) - (1 << 23)) / Float(1 << 23)
        }
    }
}

/// A 64-byte aligned float buffer from posix_memalign, outside the ledger: the "direct" side of
/// every comparison.
final class RawFloats {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, max(count, 1) * MemoryLayout<Float>.stride) == 0, let raw else {
            fatalError("out of memory allocating \(count) floats for a benchmark")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { free(pointer) }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
