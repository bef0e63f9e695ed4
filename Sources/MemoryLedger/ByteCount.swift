#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte counts as people write them, parsed in one place for every flag and file: SI prefixes
/// are powers of 1000 and binary prefixes powers of 1024, everywhere.
public enum ByteCount {
    /// Parses `262144`, `64KiB`, `256MiB`, `1.5GiB`, `1TiB` (powers of 1024), `500kB`, `300MB`,
    /// `2GB`, `1TB` (powers of 1000), and `K`, `M`, `G`, `T` alone as KiB, MiB, GiB, TiB (as GNU
    /// coreutils read them). Case-insensitive, spaces allowed before the unit; rounds down to
    /// whole bytes. Nil for anything else (a negative or non-finite number, an unknown unit, a
    /// count beyond Int).
    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces
        let number = trimmed.prefix { ("0"..."9").contains($0) || $0 == "." }
        let unit = String(trimmed.dropFirst(number.count)).trimmingSpaces.lowercased()
        guard !number.isEmpty, let value = Double(number), value >= 0, value.isFinite else { return nil }
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "k", "kib": scale = 0x1p10
        case "m", "mib": scale = 0x1p20
        case "g", "gib": scale = 0x1p30
        case "t", "tib": scale = 0x1p40
        case "kb": scale = 1e3
        case "mb": scale = 1e6
        case "gb": scale = 1e9
        case "tb": scale = 1e12
        default: return nil
        }
        let bytes = (value * scale).rounded(.down)
        return bytes < 0x1p63 ? Int(bytes) : nil
    }

    /// The shortest exact binary form: `256MiB`, `64KiB`, or plain bytes.
    public static func exactBinary(_ bytes: Int) -> String {
        if bytes != 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30)GiB" }
        if bytes != 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes != 0 && bytes % 1024 == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)"
    }
}

private extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return Substring(self[first...last])
    }
}
