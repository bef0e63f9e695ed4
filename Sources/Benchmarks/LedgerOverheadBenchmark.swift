import Foundation
import MemoryLedger
import Tensors

/// What the memory ledger costs: raw allocate/free throughput (one thread, two threads sharing
/// one ledger, and posix_memalign alone), and a training-like step with and without it.
enum LedgerOverheadBenchmark {
    /// Sizes cycled through by the throughput loops: small and medium buffers, below glibc's
    /// mmap threshold, so the loop measures the ledger and malloc rather than system calls.
    static let sizes = [64, 512, 4096, 16384]

    static func run(_ configuration: FoundationBenchmark.Configuration) -> FoundationBenchmarkReport.LedgerOverhead {
        let repeats = configuration.repeats
        let target = configuration.secondsPerRepeat

        // One thread. The ledger keeps its default event history, as training does.
        let ledger = Ledger()
        let pairs = max(1000, BenchmarkClock.iterations(toFill: target) { trackedPairs(ledger, 1000) } * 1000)
        var tracked: [Double] = [], untracked: [Double] = []
        for _ in 0..<repeats {
            tracked.append(Double(2 * pairs) / BenchmarkClock.time { trackedPairs(ledger, pairs) })
            untracked.append(Double(2 * pairs) / BenchmarkClock.time { untrackedPairs(pairs) })
        }

        // Two threads on one ledger: every event takes the same mutex.
        var twoThreads: [Double] = []
        for _ in 0..<repeats {
            let shared = Ledger()
            let seconds = BenchmarkClock.time {
                let done = DispatchGroup()
                for _ in 0..<2 {
                    done.enter()
                    Thread { trackedPairs(shared, pairs); done.leave() }.start()
                }
                done.wait()
            }
            twoThreads.append(Double(4 * pairs) / seconds)
        }

        let step = TrainingLikeStep()
        let measured = step.measure(repeats: repeats, secondsPerRepeat: 2 * target)
        return .init(opsPerSecondOneThread: BenchmarkClock.median(tracked),
                     opsPerSecondTwoThreads: BenchmarkClock.median(twoThreads),
                     untrackedOpsPerSecondOneThread: BenchmarkClock.median(untracked),
                     trackedStepSeconds: measured.tracked, untrackedStepSeconds: measured.untracked,
                     trackedStepPageFaults: measured.trackedFaults, untrackedStepPageFaults: measured.untrackedFaults,
                     tensorsPerStep: TrainingLikeStep.activationShapes.count)
    }

    /// `count` allocate/free pairs through the ledger, touching one byte so the work is not elided.
    static func trackedPairs(_ ledger: Ledger, _ count: Int) {
        for i in 0..<count {
            let bytes = sizes[i & 3]
            let p = ledger.allocate(bytes: bytes, category: .workspace, layer: i & 7, label: "bench.pair")
            p.storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self)
            ledger.free(p, bytes: bytes, category: .workspace, layer: i & 7, label: "bench.pair")
        }
    }

    /// The same pairs with posix_memalign and free alone.
    static func untrackedPairs(_ count: Int) {
        for i in 0..<count {
            var raw: UnsafeMutableRawPointer?
            guard posix_memalign(&raw, 64, sizes[i & 3]) == 0, let p = raw else { fatalError("out of memory") }
            p.storeBytes(of: UInt8(truncatingIfNeeded: i), as: UInt8.self)
            free(p)
        }
    }
}
