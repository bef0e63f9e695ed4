#if canImport(Glibc)
import Glibc
#endif

/// Progress of long work on standard error: a bar redrawn in place on a terminal, plain lines
/// (at most one every `plainInterval` seconds) when piped. Library code writes to fd 2
/// directly (Glibc's `stderr` is not usable from Swift 6 library code).
public final class ProgressReporter {
    public let isTerminal: Bool
    public var plainInterval: Double
    private var lastPlain: Double = -1e9
    private let enabled: Bool

    public init(enabled: Bool = true, plainInterval: Double = 10) {
        self.enabled = enabled
        self.isTerminal = isatty(2) == 1
        self.plainInterval = plainInterval
    }

    /// Updates the bar for `done` of `total` with a trailing status text.
    public func update(title: String, done: Int, total: Int, status: String) {
        guard enabled else { return }
        let now = BenchmarkClock.now()
        if isTerminal {
            let width = 24
            let filled = total > 0 ? min(width, done * width / total) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            ProgressReporter.write("\r\u{1B}[2K\(title) [\(bar)] \(done)/\(total) \(status)")
        } else if now - lastPlain >= plainInterval {
            lastPlain = now
            ProgressReporter.write("\(title) \(done)/\(total) \(status)\n")
        }
    }

    /// Ends the bar (a newline on a terminal).
    public func finish() {
        guard enabled, isTerminal else { return }
        ProgressReporter.write("\r\u{1B}[2K")
    }

    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }
}
