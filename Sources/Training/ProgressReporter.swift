#if canImport(Glibc)
import Glibc
#endif

/// Progress of long work on standard error, the one progress display of the tool (training,
/// conversion, verification): a bar redrawn in place on a terminal; plain lines when piped, so
/// logs stay readable (a line when the title changes, when the work completes, and at most one
/// every `plainInterval` seconds in between). Library code writes to fd 2 directly (Glibc's
/// `stderr` is not usable from Swift 6 library code).
public final class ProgressReporter {
    public let isTerminal: Bool
    public var plainInterval: Double
    private var lastPlain: Double = -1e9
    private var lastTitle = ""
    private var lastDrawn = -1
    private let enabled: Bool

    public init(enabled: Bool = true, plainInterval: Double = 10) {
        self.enabled = enabled
        self.isTerminal = isatty(2) == 1
        self.plainInterval = plainInterval
    }

    /// Updates the bar for `done` of `total` with an optional trailing status text.
    public func update(title: String, done: Int, total: Int, status: String = "") {
        guard enabled else { return }
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let percent = Int(fraction * 100)
        let tail = status.isEmpty ? "" : " \(status)"
        if isTerminal {
            // Redraw only when the bar would change (a step of 0.5%) or the title or status moves on.
            let step = Int(fraction * 200)
            guard step != lastDrawn || title != lastTitle || !status.isEmpty else { return }
            if title != lastTitle && !lastTitle.isEmpty { ProgressReporter.write("\n") }
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            ProgressReporter.write("\r\u{1B}[2K\(title) [\(bar)] \(percent)% \(done)/\(total)\(tail)")
            lastDrawn = step
        } else {
            let now = MonotonicClock.now()
            guard title != lastTitle || done >= total || now - lastPlain >= plainInterval else { return }
            lastPlain = now
            ProgressReporter.write("\(title): \(percent)% (\(done)/\(total))\(tail)\n")
        }
        lastTitle = title
    }

    /// Ends the bar on a terminal: keeps its line, or clears it when a summary line follows.
    public func finish(clear: Bool = false) {
        guard enabled else { return }
        if isTerminal && !lastTitle.isEmpty { ProgressReporter.write(clear ? "\r\u{1B}[2K" : "\n") }
        lastTitle = ""
        lastDrawn = -1
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
