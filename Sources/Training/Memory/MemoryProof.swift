import Layers
import MemoryLedger
import Tensors

/// The memory claims of local training, checked on one step against the ledger (DESIGN.md
/// section 4). Exact byte counts; no operating-system figures.
public enum MemoryProof {
    /// Runs one local training step of `network` and checks, for every layer k:
    /// 1. the measured peak of transient bytes during k's step equals the planner's W_k;
    /// 2. live activation bytes never exceed W_k during k's step;
    /// 3. right after k's update only its hand-off survives: transient bytes (all layers, all
    ///    transient categories) == live activations == k's hand-off bytes;
    /// and that 4. after the step the ledger holds exactly what it held before.
    ///
    /// - Parameters:
    ///   - network: a local-mode network on its own ledger.
    ///   - images: booked as `input` on the network's ledger, the planner's assumption.
    ///   - labels: one label per image.
    ///   - lr: the step's learning rate.
    ///   - step: the step number (it picks the dropout masks).
    /// - Returns: the violations, as sentences; empty when every claim holds.
    public static func checkLocalStep(_ network: Network, images: Tensor, labels: [Int32], lr: Float = 1e-3, step: Int = 0) -> [String] {
        precondition(network.spec.loss.isLocal, "the proof is about local mode")
        let ledger = network.ledger
        let plan = MemoryPlanner.plan(network.spec, batchSize: images.rowCount, optimizer: network.optimizers[0].settings)
        let before = ledger.current()
        ledger.clearEvents()
        ledger.setRecording(true)
        _ = labels.withUnsafeBufferPointer { network.trainStep(images: images, labels: $0.baseAddress!, lr: lr, step: step) }
        let history = ledger.history()
        let after = ledger.current()
        var violations: [String] = []
        if history.dropped > 0 { violations.append("the ledger dropped \(history.dropped) events; the windows are incomplete") }
        let windows = StepWindows.measure(events: history.events, final: after)
        for layer in plan.layers {
            guard let window = windows[layer.index], let workingSet = layer.workingSetBytes else {
                violations.append("layer \(layer.index): no step recorded")
                continue
            }
            if window.peakTransient != workingSet {
                violations.append("layer \(layer.index): measured peak \(window.peakTransient) bytes != analytic W_k \(workingSet) bytes")
            }
            if window.peakActivations > workingSet {
                violations.append("layer \(layer.index): \(window.peakActivations) live activation bytes > W_k \(workingSet) bytes")
            }
            if window.transientAtEnd != layer.handOffBytes || window.activationsAtEnd != layer.handOffBytes
                || window.survivingBytes != layer.handOffBytes {
                violations.append("layer \(layer.index): after its update \(window.transientAtEnd) transient bytes "
                                  + "(\(window.activationsAtEnd) activations, \(window.survivingBytes) of its own) survive, "
                                  + "expected only the hand-off, \(layer.handOffBytes) bytes")
            }
        }
        if after.total != before.total {
            violations.append("after the step \(after.total) bytes are live, \(before.total) were before: \(after.total - before.total) bytes of the step survive")
        }
        return violations
    }
}
