import Training

/// Timing helpers shared by the benchmarks: a monotonic clock, medians, and a repeat that runs
/// a body often enough to be measurable.
public enum BenchmarkClock {
    /// Seconds on the monotonic clock.
    public static func now() -> Double {
        MonotonicClock.now()
    }

    /// Seconds `body` takes.
    public static func time(_ body: () -> Void) -> Double {
        let start = now()
        body()
        return now() - start
    }

    /// The median (the mean of the middle two for an even count). The machine is shared, so
    /// medians, not means or minima, are what the benchmarks report.
    public static func median(_ values: [Double]) -> Double {
        precondition(!values.isEmpty)
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// How many calls of `body` fill about `target` seconds, from one timed call (at least 1).
    public static func iterations(toFill target: Double, _ body: () -> Void) -> Int {
        let once = max(time(body), 1e-7)
        return max(1, Int((target / once).rounded(.up)))
    }
}
