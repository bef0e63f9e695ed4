#if canImport(Glibc)
import Glibc
#endif

/// Seconds on the monotonic clock: the one clock that the trainer, the progress display and the
/// benchmarks time with.
package enum MonotonicClock {
    package static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
