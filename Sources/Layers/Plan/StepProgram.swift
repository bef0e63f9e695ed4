import MemoryLedger
import Tensors

/// One thing a training step does to memory, in the order the code does it.
public enum PlannedEvent: Sendable, Equatable {
    /// `bytes` booked under a name unique while live (`"3.h"`, `"grad.3.bn.weight"`).
    case allocate(name: String, category: Category, layer: Int?, bytes: Int)
    case free(name: String)
    /// Everything after this belongs to one training step (before it: what the network, its
    /// optimizers and the input batch hold for the whole run).
    case stepBegins
    /// Layer `index` starts its part of the step (its forward marker in the ledger).
    case layerBegins(Int)
}

/// What a step of a network allocates and frees, generated from a `ShapeTable` without allocating
/// anything: `ShapeTable.stepProgram(batch:chunk:optimizer:)`, or for one round of the greedy
/// schedule `ShapeTable.greedyStepProgram(round:batch:chunk:optimizer:)`. The memory planner replays it.
public struct StepProgram: Sendable {
    public let batch: Int
    /// The micro-batch of chunked local steps (nil: whole batches).
    public let chunk: Int?
    public private(set) var events: [PlannedEvent] = []
    /// The oneDNN primitives the step uses (`.dnnl` engine), each as (pass, geometry, batch, bias):
    /// the network's shared oneDNN workspace is the largest of their workspaces.
    public private(set) var convCalls: Set<ConvCall> = []
    private var live: [String: Int] = [:]

    public struct ConvCall: Hashable, Sendable {
        public var pass: ConvPass
        public var geometry: ConvGeometry
        public var batch: Int
        public var withBias: Bool
        public var engine: ConvEngine
    }

    init(batch: Int, chunk: Int?) {
        self.batch = batch
        self.chunk = chunk
    }

    mutating func allocate(_ name: String, _ category: Category, layer: Int?, floats: Int) {
        allocate(name, category, layer: layer, bytes: floats * MemoryLayout<Float>.stride)
    }

    mutating func allocate(_ name: String, _ category: Category, layer: Int?, bytes: Int) {
        precondition(live[name] == nil, "step program: \(name) allocated twice")
        live[name] = bytes
        events.append(.allocate(name: name, category: category, layer: layer, bytes: bytes))
    }

    mutating func free(_ names: String...) {
        for name in names {
            precondition(live.removeValue(forKey: name) != nil, "step program: \(name) freed but not live")
            events.append(.free(name: name))
        }
    }

    /// Frees every live buffer whose name starts with `prefix` (a group's gradients at its update).
    mutating func freeAll(prefix: String) {
        for name in live.keys.filter({ $0.hasPrefix(prefix) }).sorted() { free(name) }
    }

    func isLive(_ name: String) -> Bool { live[name] != nil }

    mutating func mark(_ event: PlannedEvent) { events.append(event) }

    mutating func conv(_ pass: ConvPass, _ geometry: ConvGeometry, batch: Int, bias: Bool, engine: ConvEngine) {
        convCalls.insert(ConvCall(pass: pass, geometry: geometry, batch: batch, withBias: bias, engine: engine))
    }

    mutating func prepend(_ persistent: [PlannedEvent]) {
        for case .allocate(let name, _, _, let bytes) in persistent { live[name] = bytes }
        events = persistent + events
    }

    /// Buffers still live at the end (the persistent ones, if the step freed all of its own).
    public var liveNames: [String] { live.keys.sorted() }
}
