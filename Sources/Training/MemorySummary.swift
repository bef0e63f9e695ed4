import MemoryLedger
import Reports

/// The memory ledger's report in a form to read from code or print: the peak of every byte the
/// tensors, heads, optimizer state and loader held, by category and by layer, next to what the
/// operating system saw.
///
/// The ledger counts logical bytes (element count x element size) of every buffer it books;
/// the process's resident set also holds the runtime, code and mapped shard pages, which the
/// ledger does not count.
///
/// ```swift
/// let memory = trainer.memorySummary()
/// print(memory)                                        // one line per category
/// let activations = memory.peak.bytes(.activations)    // bytes, at the peak
/// ```
public struct MemorySummary: Sendable, Equatable, CustomStringConvertible {
    /// The ledger's high-water mark and its breakdown at that instant. A ``Trainer`` resets the
    /// peak when each epoch starts, so after a run this is the last epoch's (evaluation included).
    public var peak: LedgerSnapshot
    /// The bytes live when the summary was taken.
    public var live: LedgerSnapshot
    /// The process's peak resident set size in bytes (VmHWM; 0 where it cannot be read).
    public var processPeakRSS: Int

    /// Reads `ledger` and the process's figures now.
    public init(ledger: Ledger) {
        peak = ledger.peak()
        live = ledger.current()
        processPeakRSS = ProcessMemory.read().peakRSS
    }

    /// The categories that held bytes at the peak, largest first.
    public var peakCategories: [(category: Category, bytes: Int)] {
        Category.allCases.map { ($0, peak.bytes($0)) }.filter { $0.1 > 0 }.sorted { $0.1 > $1.1 }
    }

    /// The peak, one line per category that held bytes, then the live bytes and the process's peak.
    public var description: String {
        var lines = ["ledger peak \(ByteFormat.human(peak.total))"]
        for (category, bytes) in peakCategories {
            let name = category.description
            lines.append("  " + name + String(repeating: " ", count: max(1, 16 - name.count)) + ByteFormat.human(bytes))
        }
        lines.append("live now \(ByteFormat.human(live.total)); process peak RSS \(ByteFormat.human(processPeakRSS))")
        return lines.joined(separator: "\n")
    }
}
