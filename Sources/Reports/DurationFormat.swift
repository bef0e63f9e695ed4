/// Time labels for chart axes: one unit for a whole axis, chosen from its full span, so the
/// labels of one axis are comparable at a glance.
enum DurationFormat {
    /// The unit name and nanoseconds per unit that suit an axis spanning `nanos`.
    static func unit(forSpan nanos: UInt64) -> (name: String, nanos: Double) {
        if nanos < 1_000_000 { return ("µs", 1e3) }
        if nanos < 1_000_000_000 { return ("ms", 1e6) }
        return ("s", 1e9)
    }

    /// `nanos` in `unit`, one decimal: "12.5 ms".
    static func format(_ nanos: Double, unit: (name: String, nanos: Double)) -> String {
        ByteFormat.fixed(nanos / unit.nanos, 1) + " " + unit.name
    }
}
