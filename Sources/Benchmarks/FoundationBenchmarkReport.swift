import Foundation

/// What `FoundationBenchmark` measured: GEMM throughput through our tensor wrapper and through
/// the BLAS directly, and what the memory ledger costs.
public struct FoundationBenchmarkReport: Codable, Sendable {
    /// One GEMM shape, C(m, n) = op(A) op(B) with k the inner dimension.
    public struct GEMM: Codable, Sendable {
        public var name: String
        public var m: Int, n: Int, k: Int
        public var transA: Bool, transB: Bool
        /// Through `BLAS.gemm(Tensor, Tensor, into:)` on ledger-owned tensors.
        public var wrapperGFLOPS: Double
        /// Through `BLAS.gemm(transA:...)` on plain posix_memalign buffers.
        public var directGFLOPS: Double
        public var wrapperOverDirect: Double { wrapperGFLOPS / directGFLOPS }
    }

    /// The ledger's cost.
    public struct LedgerOverhead: Codable, Sendable {
        /// Allocations plus frees per second, one thread, through the ledger.
        public var opsPerSecondOneThread: Double
        /// The same with two threads sharing one ledger (its mutex is contended).
        public var opsPerSecondTwoThreads: Double
        /// posix_memalign plus free per second, one thread, no ledger: the floor.
        public var untrackedOpsPerSecondOneThread: Double
        /// A training-like step (allocate ~20 MLP-sized buffers, touch them, run the forward
        /// GEMMs, free): seconds per step through `Tensor` and the ledger, and with plain buffers.
        public var trackedStepSeconds: Double
        public var untrackedStepSeconds: Double
        /// Minor page faults per step: pages malloc handed back to the kernel and took again.
        public var trackedStepPageFaults: Double
        public var untrackedStepPageFaults: Double
        public var tensorsPerStep: Int
        /// Tracked over untracked step time: 1.0 means the ledger costs nothing measurable.
        public var trackedOverUntracked: Double { trackedStepSeconds / untrackedStepSeconds }
    }

    public var threads: Int
    public var repeats: Int
    /// The elementwise kernels' dispatch path (`KernelPath`: avx512, avx2, neon or generic).
    public var elementwiseKernels: String
    /// OPENBLAS_CORETYPE as set in the environment ("" when OpenBLAS picks its kernel itself).
    public var openBLASCoreType: String
    public var gemm: [GEMM]
    public var ledger: LedgerOverhead

    /// A table for the terminal.
    public var table: String {
        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
        let coreType = openBLASCoreType.isEmpty ? "chosen by OpenBLAS" : "OPENBLAS_CORETYPE=\(openBLASCoreType)"
        var lines = ["foundation benchmark: BLAS threads \(threads), median of \(repeats) repeats",
                     "elementwise kernels: \(elementwiseKernels); sgemm kernel \(coreType)", "",
                     "GEMM (GFLOP/s)                                  m     n     k    wrapper     direct   ratio"]
        for g in gemm {
            let name = g.name.padding(toLength: 44, withPad: " ", startingAt: 0)
            lines.append("  \(name)\(pad("\(g.m)", 5)) \(pad("\(g.n)", 5)) \(pad("\(g.k)", 5))  \(pad(f(g.wrapperGFLOPS), 9))  \(pad(f(g.directGFLOPS), 9))  \(pad(f(g.wrapperOverDirect, 3), 6))")
        }
        let l = ledger
        lines += ["", "ledger overhead",
                  "  allocs+frees per second, 1 thread:      \(pad(f(l.opsPerSecondOneThread / 1e6, 2), 8)) M  (posix_memalign+free alone: \(f(l.untrackedOpsPerSecondOneThread / 1e6, 2)) M)",
                  "  allocs+frees per second, 2 threads:     \(pad(f(l.opsPerSecondTwoThreads / 1e6, 2), 8)) M",
                  "  training-like step (\(l.tensorsPerStep) tensors + forward GEMMs):",
                  "    tracked (Tensor + ledger):           \(pad(f(l.trackedStepSeconds * 1e3, 3), 8)) ms  \(f(l.trackedStepPageFaults, 0)) page faults/step",
                  "    untracked (posix_memalign/free):     \(pad(f(l.untrackedStepSeconds * 1e3, 3), 8)) ms  \(f(l.untrackedStepPageFaults, 0)) page faults/step",
                  "    tracked / untracked:                 \(pad(f(l.trackedOverUntracked, 3), 8))"]
        return lines.joined(separator: "\n")
    }

    /// The report as pretty-printed JSON with sorted keys (derived ratios included).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(JSONForm(self)), as: UTF8.self)
    }

    /// The encoded form adds the ratios, which are computed properties of the report.
    private struct JSONForm: Encodable {
        struct GEMMForm: Encodable {
            var name: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool
            var wrapperGFLOPS: Double, directGFLOPS: Double, wrapperOverDirect: Double
        }
        struct LedgerForm: Encodable {
            var opsPerSecondOneThread: Double, opsPerSecondTwoThreads: Double, untrackedOpsPerSecondOneThread: Double
            var trackedStepSeconds: Double, untrackedStepSeconds: Double
            var trackedStepPageFaults: Double, untrackedStepPageFaults: Double
            var tensorsPerStep: Int, trackedOverUntracked: Double
        }
        var benchmark = "foundation", threads: Int, repeats: Int, gemm: [GEMMForm], ledger: LedgerForm
        init(_ r: FoundationBenchmarkReport) {
            threads = r.threads
            repeats = r.repeats
            gemm = r.gemm.map { GEMMForm(name: $0.name, m: $0.m, n: $0.n, k: $0.k, transA: $0.transA, transB: $0.transB,
                                         wrapperGFLOPS: $0.wrapperGFLOPS, directGFLOPS: $0.directGFLOPS, wrapperOverDirect: $0.wrapperOverDirect) }
            let l = r.ledger
            ledger = LedgerForm(opsPerSecondOneThread: l.opsPerSecondOneThread, opsPerSecondTwoThreads: l.opsPerSecondTwoThreads,
                                untrackedOpsPerSecondOneThread: l.untrackedOpsPerSecondOneThread,
                                trackedStepSeconds: l.trackedStepSeconds, untrackedStepSeconds: l.untrackedStepSeconds,
                                trackedStepPageFaults: l.trackedStepPageFaults, untrackedStepPageFaults: l.untrackedStepPageFaults,
                                tensorsPerStep: l.tensorsPerStep, trackedOverUntracked: l.trackedOverUntracked)
        }
    }
}
