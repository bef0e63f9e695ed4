import MemoryLedger
import Reports

/// A training step's allocations replayed from its `StepProgram`: `MemoryPlanner` feeds it what
/// the layers book and free, in the order the code does it, and reads the peaks off. Bytes are
/// logical (element count x 4), as the ledger books them.
struct AllocationReplay {
    /// Categories that live only during a step (the rest live as long as the model or the batch).
    static let transientCategories: [Category] = [.activations, .activationGrads, .lossTemp, .gradients, .workspace]

    private(set) var live = CategoryBytes()
    private var buffers: [String: (category: Category, bytes: Int)] = [:]
    /// The whole-ledger high-water mark and the breakdown at that instant.
    private(set) var peak = 0
    private(set) var peakBreakdown = CategoryBytes()
    /// Transient bytes live when the step began (the conv scratch, booked for the network's life).
    private(set) var baseline = 0
    /// Highest transient bytes above `baseline` since `beginWindow()`.
    private(set) var windowPeak = 0

    var total: Int { live.total }
    var transient: Int { AllocationReplay.transientCategories.reduce(0) { $0 + live[$1] } }

    /// Books `floats` Float32 elements under `name` (unique while live).
    mutating func allocate(_ name: String, _ category: Category, bytes: Int) {
        precondition(buffers[name] == nil, "planner: \(name) allocated twice")
        buffers[name] = (category, bytes)
        live[category] += bytes
        if live.total > peak {
            peak = live.total
            peakBreakdown = live
        }
        windowPeak = max(windowPeak, transient - baseline)
    }

    mutating func free(_ names: String...) {
        for name in names {
            guard let buffer = buffers.removeValue(forKey: name) else { preconditionFailure("planner: \(name) freed but not live") }
            live[buffer.category] -= buffer.bytes
        }
    }

    /// The step starts: transient bytes live now are its baseline.
    mutating func beginStep() { baseline = transient }

    /// Starts measuring a layer's working set from the transient bytes live now.
    mutating func beginWindow() { windowPeak = transient - baseline }
}
