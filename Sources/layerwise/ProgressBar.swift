#if canImport(Glibc)
import Glibc
#endif
import Training

/// Progress of long work on standard error: a redrawn bar when stderr is a terminal, a plain
/// line every 10% otherwise (so logs stay readable when piped).
final class ProgressBar {
    private let isTerminal = isatty(2) != 0
    private var lastPhase = ""
    private var lastStep = -1

    func update(phase: String, done: Int, total: Int) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        if isTerminal {
            let step = Int(fraction * 200)
            guard step != lastStep || phase != lastPhase else { return }
            if phase != lastPhase && !lastPhase.isEmpty { writeStandardError("\n") }
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            writeStandardError("\r\(phase.padding(10)) [\(bar)] \(Int(fraction * 100))% \(done)/\(total)")
            lastStep = step
        } else {
            let step = Int(fraction * 10)
            guard step != lastStep || phase != lastPhase else { return }
            writeStandardError("\(phase): \(step * 10)% (\(done)/\(total))\n")
            lastStep = step
        }
        lastPhase = phase
    }

    /// Ends the bar's line.
    func finish() {
        if isTerminal && !lastPhase.isEmpty { writeStandardError("\n") }
        lastPhase = ""
        lastStep = -1
    }
}

/// Writes to file descriptor 2 through the one writer the library uses (short writes retried).
func writeStandardError(_ text: String) { ProgressReporter.write(text) }

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
