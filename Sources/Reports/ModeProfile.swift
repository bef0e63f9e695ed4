import MemoryLedger

/// Everything measured in one run of one training mode ("local", "backprop", ...): the ledger's
/// peak and its breakdown, per-category and per-phase maxima, the operating system's figures,
/// the per-layer table and the timeline.
///
/// Capture one with `init(ledger:...)` right after the run, from the ledger that booked it.
public struct ModeProfile: Equatable, Sendable, Codable {
    /// Mode name: "local", "backprop", "backprop+checkpointing", ...
    public var name: String
    /// Model description, e.g. "vgg8b predsim" or "mlp 3x1024".
    public var model: String
    public var batchSize: Int
    /// Training steps (batches) the profile covers.
    public var steps: Int
    /// The ledger's high-water mark with its breakdown at that instant.
    public var peak: PeakBreakdown
    /// Each category's own highest live bytes over the run (not necessarily at the same instant).
    public var categoryPeaks: CategoryBytes
    /// Highest live activation bytes over the run: the activation-only peak.
    public var activationPeak: Int
    /// Per-phase maxima, in `Phase` order: the ledger's, raised to the bytes live when each
    /// phase was entered.
    public var phasePeaks: [PhasePeak]
    public var process: ProcessFigures
    /// Bytes the ledger's own tables and history take (not included in the ledger's figures).
    public var ledgerOwnBytes: Int
    public var layers: [LayerRow]
    public var timeline: Timeline

    public init(name: String, model: String, batchSize: Int, steps: Int, peak: PeakBreakdown,
                categoryPeaks: CategoryBytes, activationPeak: Int, phasePeaks: [PhasePeak],
                process: ProcessFigures, ledgerOwnBytes: Int, layers: [LayerRow], timeline: Timeline) {
        self.name = name
        self.model = model
        self.batchSize = batchSize
        self.steps = steps
        self.peak = peak
        self.categoryPeaks = categoryPeaks
        self.activationPeak = activationPeak
        self.phasePeaks = phasePeaks
        self.process = process
        self.ledgerOwnBytes = ledgerOwnBytes
        self.layers = layers
        self.timeline = timeline
    }

    /// Captures a profile from the ledger that booked the run.
    ///
    /// Call it after the measured steps, before the ledger is reused. For a window of work
    /// inside a longer run, call `ledger.resetPeaks()` and `ledger.clearEvents()` when the window
    /// starts. Give each mode its own ledger (or reset between modes): the peaks and the
    /// timeline come from the whole ledger.
    ///
    /// - Parameters:
    ///   - ledger: the ledger that booked the run.
    ///   - name: the mode's name ("local", "backprop", ...).
    ///   - model: the model's description.
    ///   - batchSize: examples per training step.
    ///   - steps: training steps the ledger saw.
    ///   - layers: the per-layer table the trainer computed (analytic W_k, measured peaks...).
    ///   - process: the OS figures; read them at the same moment (`ProcessFigures(.read())`).
    public init(ledger: Ledger, name: String, model: String, batchSize: Int, steps: Int,
                layers: [LayerRow] = [], process: ProcessFigures) {
        let history = ledger.history()
        let timeline = Timeline(events: history.events, dropped: history.dropped, final: ledger.current())
        var phasePeaks = PhasePeak.all(from: ledger)
        // The ledger raises a phase's maxima only on allocations, so a phase that only frees
        // (an update releasing gradients) would read 0 although it held everything live when it
        // began. The bytes live at each phase marker were also seen while that phase was current.
        for (i, event) in history.events.enumerated() where event.kind == .marker {
            guard let p = phasePeaks.firstIndex(where: { $0.phase == event.phase.description }) else { continue }
            phasePeaks[p].total = max(phasePeaks[p].total, timeline.total[i])
            for category in Category.allCases {
                phasePeaks[p].byCategory[category] = max(phasePeaks[p].byCategory[category], timeline.categories[category][i])
            }
        }
        // A category's live bytes only rise on one of its own allocations, and every allocation
        // updates that phase's per-category maximum, so the maximum over phases is exact.
        var categoryPeaks = CategoryBytes()
        for category in Category.allCases {
            categoryPeaks[category] = phasePeaks.map { $0.byCategory[category] }.max() ?? 0
        }
        self.init(name: name, model: model, batchSize: batchSize, steps: steps,
                  peak: PeakBreakdown(ledger.peak()),
                  categoryPeaks: categoryPeaks,
                  activationPeak: categoryPeaks[.activations],
                  phasePeaks: phasePeaks,
                  process: process,
                  ledgerOwnBytes: ledger.ownBytes,
                  layers: layers,
                  timeline: timeline)
    }
}
