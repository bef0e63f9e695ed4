import ArgumentParser

/// A byte count on the command line: `262144`, `256KiB`, `256K`, `64MiB`, `1.5GiB`.
struct ByteSize: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = text.prefix { $0.isNumber || $0 == "." }
        let unit = text.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        guard let value = Double(digits), value >= 0 else { return nil }
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "k", "kb", "kib": scale = 1024
        case "m", "mb", "mib": scale = 1024 * 1024
        case "g", "gb", "gib": scale = 1024 * 1024 * 1024
        default: return nil
        }
        bytes = Int(value * scale)
    }

    var description: String { "\(bytes)" }
    var defaultValueDescription: String { formatSize(bytes) }
}

private func formatSize(_ bytes: Int) -> String {
    if bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
    if bytes % 1024 == 0 { return "\(bytes >> 10)KiB" }
    return "\(bytes)"
}

import Foundation
