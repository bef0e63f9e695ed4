import Foundation

/// Human and exact renderings of byte counts and ratios, identical on every machine (no locale).
public enum ByteFormat {
    /// "512 B", "3.4 KiB", "212.0 MiB", "1.6 GiB": binary units, one decimal.
    public static func human(_ bytes: Int) -> String {
        let sign = bytes < 0 ? "-" : ""
        let magnitude = Double(bytes.magnitude)
        if bytes.magnitude < 1024 { return "\(sign)\(bytes.magnitude) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = magnitude / 1024
        var unit = 0
        // Step up while the rounded value would show 1024.0 or more in this unit.
        while value >= 1023.95 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return sign + String(format: "%.1f", value) + " " + units[unit]
    }

    /// The exact count with thousands separators: "93,323,264".
    public static func exact(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var grouped = ""
        for (i, digit) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { grouped.append(",") }
            grouped.append(digit)
        }
        return (value < 0 ? "-" : "") + grouped
    }

    /// Megabytes (MiB) as a plain number, for charts and counters.
    public static func mebibytes(_ bytes: Int) -> Double {
        Double(bytes) / 1_048_576
    }

    /// "3.41x", or "n/a" when the ratio is undefined.
    public static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "n/a" }
        return String(format: "%.2fx", value)
    }

    /// A number with a fixed count of decimals, for coordinates and table cells.
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }
}
