import MemoryLedger
import Tensors

/// A short check that the ledger, the tensors and the BLAS work together on this machine.
public enum SelfCheck {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Multiplies two random matrices through the BLAS, compares against a plain loop, frees
    /// everything and returns a summary of what the ledger booked.
    public static func run(threads: Int? = nil) throws -> String {
        BLAS.setThreads(threads ?? ProcessorCount.online)
        let ledger = Ledger()
        var maxError: Float = 0
        do {
            let (m, k, n) = (64, 96, 48)
            let a = Tensor([m, k], .activations, layer: 0, label: "selfcheck.a", ledger: ledger)
            let b = Tensor([k, n], .weights, layer: 0, label: "selfcheck.b", ledger: ledger)
            let c = Tensor([m, n], .activations, layer: 1, label: "selfcheck.c", ledger: ledger)
            var rng = UInt64(12345)
            for t in [a, b] { for i in 0..<t.count { rng = rng &* 6364136223846793005 &+ 1442695040888963407; t.pointer[i] = Float(Int64(rng >> 40) - (1 << 23)) / Float(1 << 23) } }
            BLAS.gemm(a, b, into: c)
            for i in 0..<m { for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a.pointer[i * k + p] * b.pointer[p * n + j] }
                maxError = max(maxError, abs(s - c.pointer[i * n + j]))
            } }
        }
        let peak = ledger.peak()
        let live = ledger.current()
        guard maxError < 1e-3 else { throw Failure(description: "BLAS result differs from a plain loop by \(maxError)") }
        guard live.total == 0 else { throw Failure(description: "ledger still holds \(live.total) bytes after freeing everything") }
        let expected = (64 * 96 + 96 * 48 + 64 * 48) * 4
        guard peak.total == expected else { throw Failure(description: "ledger peak \(peak.total) bytes, expected \(expected)") }
        let memory = ProcessMemory.read()
        return """
        selfcheck passed
          BLAS threads:         \(BLAS.threads)
          gemm 64x96x48:        max |error| vs plain loop = \(maxError)
          ledger peak:          \(peak.total) bytes (activations \(peak.bytes(.activations)), weights \(peak.bytes(.weights)))
          ledger live after:    \(live.total) bytes
          process RSS:          \(memory.currentRSS / 1024) KiB now, \(memory.peakRSS / 1024) KiB peak
        """
    }
}
