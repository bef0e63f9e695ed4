import MemoryLedger
@testable import Reports

/// Drives real ledgers through a scripted training step of a 3-layer model in local and in
/// backprop mode, and keeps its own running model of live bytes per category so tests can
/// compare the reconstructed timeline against an independent computation.
///
/// Sizes are in KiB units; peaks by hand (see the comments in `local()` and `backprop()`):
/// local 9,400 KiB (activations 6,000), backprop 9,700 KiB (activations 7,000).
final class ScriptedRun {
    static let unit = 1024
    static let weights = [300, 200, 100]
    static let activations = [4000, 2000, 1000]
    static let input = 500
    static let lossTemp = 64

    let ledger = Ledger(layerCapacity: 8, eventCapacity: 4096)
    /// Expected live bytes per category after each event, computed independently of the ledger.
    private(set) var expected: [[Int]] = []
    private var live = Array(repeating: 0, count: Category.allCases.count)

    func book(_ units: Int, _ category: Category, layer: Int?) {
        ledger.book(bytes: units * ScriptedRun.unit, category: category, layer: layer, label: "scripted")
        live[category.rawValue] += units * ScriptedRun.unit
        expected.append(live)
    }

    func unbook(_ units: Int, _ category: Category, layer: Int?) {
        ledger.unbook(bytes: units * ScriptedRun.unit, category: category, layer: layer, label: "scripted")
        live[category.rawValue] -= units * ScriptedRun.unit
        expected.append(live)
    }

    func enter(_ phase: Phase, layer: Int?) {
        ledger.enter(phase, layer: layer, label: "step")
        expected.append(live)
    }

    private func setUp() {
        enter(.load, layer: nil)
        for (k, w) in ScriptedRun.weights.enumerated() { book(w, .weights, layer: k) }
        book(ScriptedRun.input, .input, layer: nil)
    }

    /// Local: each block runs forward, local loss, backward and update, then frees its input.
    /// Peak in layer 0's backward: weights 600 + input 500 + activations 4000 + activation
    /// grads 4000 + gradients 300 = 9400. Activation peak: layer 1 forward, 4000 + 2000.
    static func local() -> ScriptedRun {
        let run = ScriptedRun()
        run.setUp()
        for k in 0..<3 {
            let a = activations[k], w = weights[k]
            run.enter(.forward, layer: k)
            run.book(a, .activations, layer: k)
            run.enter(.localLoss, layer: k)
            run.book(lossTemp, .lossTemp, layer: k)
            run.unbook(lossTemp, .lossTemp, layer: k)
            run.enter(.backward, layer: k)
            run.book(a, .activationGrads, layer: k)
            run.book(w, .gradients, layer: k)
            run.enter(.update, layer: k)
            run.unbook(w, .gradients, layer: k)
            run.unbook(a, .activationGrads, layer: k)
            if k > 0 { run.unbook(activations[k - 1], .activations, layer: k - 1) }
        }
        run.enter(.idle, layer: nil)
        run.unbook(activations[2], .activations, layer: 2)
        return run
    }

    /// Backprop: all activations live after the forward pass, gradients kept until one update.
    /// Peak in layer 0's backward: 600 + 500 + activations 4000 + activation grads 4000 +
    /// gradients 600 = 9700. Activation peak: end of forward, 7000.
    static func backprop() -> ScriptedRun {
        let run = ScriptedRun()
        run.setUp()
        for k in 0..<3 {
            run.enter(.forward, layer: k)
            run.book(activations[k], .activations, layer: k)
        }
        for k in (0..<3).reversed() {
            run.enter(.backward, layer: k)
            run.book(activations[k], .activationGrads, layer: k)
            run.book(weights[k], .gradients, layer: k)
            run.unbook(activations[k], .activationGrads, layer: k)
            run.unbook(activations[k], .activations, layer: k)
        }
        run.enter(.update, layer: nil)
        for k in 0..<3 { run.unbook(weights[k], .gradients, layer: k) }
        run.enter(.idle, layer: nil)
        return run
    }

    static let fixedProcess = ProcessFigures(peakRSS: 40 << 20, currentRSS: 30 << 20, maxRSS: 41 << 20,
                                             cgroupPeak: nil, startRSS: 20 << 20)

    func profile(name: String, layerName: String = "linear") -> ModeProfile {
        let rows = (0..<3).map { k in
            LayerRow(index: k, name: "\(layerName) \(ScriptedRun.activations[k])", params: ScriptedRun.weights[k] * 256,
                     headParams: name == "local" ? 1234 : 0, optimizerStateBytes: 2 * ScriptedRun.weights[k] * ScriptedRun.unit,
                     workingSetBytes: name == "local" ? 2 * ScriptedRun.activations[k] * ScriptedRun.unit : nil,
                     measuredPeakBytes: 2 * ScriptedRun.activations[k] * ScriptedRun.unit, survivingBytes: nil)
        }
        return ModeProfile(ledger: ledger, name: name, model: "mlp 3 layers", batchSize: 128, steps: 1,
                           layers: rows, process: ScriptedRun.fixedProcess)
    }

    /// The comparison of both scripted modes.
    static func comparison() -> MemoryComparison {
        MemoryComparison(local: local().profile(name: "local"), backprop: backprop().profile(name: "backprop"))
    }
}
