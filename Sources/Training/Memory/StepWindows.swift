import MemoryLedger
import Reports

/// What the ledger's event history shows for one layer: the stretch from the layer's first
/// phase marker to the next marker of another layer (its "window"; in local mode, the block's
/// whole step including the caller dropping its input).
public struct LayerWindow: Equatable, Sendable {
    public var layer: Int
    /// Highest live bytes of the transient categories at any event of the layer's windows
    /// (the measured counterpart of W_k).
    public var peakTransient: Int
    /// Highest live `activations` bytes in the layer's windows.
    public var peakActivations: Int
    /// Transient bytes booked to this layer when its last window ended (local mode: what
    /// survives the block's update; the hand-off).
    public var survivingBytes: Int
    /// Transient bytes of all layers when its last window ended.
    public var transientAtEnd: Int
    /// Live `activations` bytes of all layers when its last window ended.
    public var activationsAtEnd: Int
}

/// Cuts a ledger history into per-layer windows and measures each.
public enum StepWindows {
    /// - Parameters:
    ///   - events: `Ledger.history().events`, complete (nothing dropped), starting at a fresh
    ///     ledger or between steps. Transient-category bytes live at the first phase marker
    ///     (conv workspaces, booked as `workspace` for the network's life) are the baseline:
    ///     every figure is measured above it, so a window counts only what the step books.
    ///   - final: `Ledger.current()` when the history was read.
    /// - Returns: one window per layer that entered a phase, by layer index.
    public static func measure(events: [LedgerEvent], final: LedgerSnapshot) -> [Int: LayerWindow] {
        let timeline = Timeline(events: events, final: final)
        let transientSeries = AllocationReplay.transientCategories.map { timeline.categories[$0] }
        let activations = timeline.categories[.activations]
        func transient(at i: Int) -> Int { transientSeries.reduce(0) { $0 + $1[i] } }
        let transientSet = Set(AllocationReplay.transientCategories)

        var windows: [Int: LayerWindow] = [:]
        var layerTransient: [Int: Int] = [:]
        var current = -1
        var baseline = 0
        var layerBaseline: [Int: Int] = [:]
        var sawMarker = false
        func close(at i: Int) {
            guard current >= 0, i >= 0 else { return }
            windows[current]?.survivingBytes = (layerTransient[current] ?? 0) - (layerBaseline[current] ?? 0)
            windows[current]?.transientAtEnd = transient(at: i) - baseline
            windows[current]?.activationsAtEnd = activations[i]
        }
        for (i, event) in events.enumerated() {
            if event.kind == .marker, !sawMarker {
                sawMarker = true
                baseline = transient(at: i)  // a marker books no bytes
                layerBaseline = layerTransient
            }
            if event.kind == .marker, event.layer != current {
                close(at: i - 1)
                current = event.layer
                if current >= 0, windows[current] == nil {
                    windows[current] = LayerWindow(layer: current, peakTransient: 0, peakActivations: 0, survivingBytes: 0,
                                                   transientAtEnd: 0, activationsAtEnd: 0)
                }
            }
            if event.kind != .marker, transientSet.contains(event.category) {
                layerTransient[event.layer, default: 0] += event.delta
            }
            if current >= 0 {
                windows[current]!.peakTransient = max(windows[current]!.peakTransient, transient(at: i) - baseline)
                windows[current]!.peakActivations = max(windows[current]!.peakActivations, activations[i])
            }
        }
        close(at: events.count - 1)
        return windows
    }
}
