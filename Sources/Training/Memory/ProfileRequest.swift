import Layers
import Tensors

/// What `layerwise profile` measures: one model and batch, run in local mode (the spec's loss)
/// and in backprop mode, each in a fresh process. Written as JSON for the child processes.
public struct ProfileRequest: Codable, Sendable, Equatable {
    /// The model with its local loss (the backprop run uses the same spec with `.backprop`).
    public var model = ModelSpec()
    public var optimizer = OptimizerSettings()
    public var batchSize = 128
    public var steps = 3
    /// Dataset folder; nil: generated inputs of the model's input shape from a seeded generator.
    public var data: String?
    public var seed: UInt64 = 1
    /// BLAS threads (nil: all cores).
    public var threads: Int?
    /// Local mode's chunked local steps (`--chunk`); nil: whole batches. Backprop ignores it.
    public var chunk: Int?
    /// Local mode's conv sim heads keep their output (`--sim-output keep`; nil: recompute).
    public var simOutput: SimOutput?
    /// Local mode's schedule (nil: simultaneous). A greedy profile measures one round.
    public var schedule: TrainingSchedule?
    /// Greedy schedule: the round (0-based) to measure; nil: the round with the largest
    /// predicted peak (the greedy run's peak).
    public var round: Int?
    /// Greedy schedule: walk every round, `steps` steps each, instead of measuring one (the
    /// peak is the largest round's, `round` is ignored).
    public var allRounds = false
    /// Local mode's optimizer state format when the budget planner chose a leaner one than
    /// `optimizer`'s (`--allow-lean-state`); backprop keeps `optimizer`'s.
    public var localStateFormat: OptimizerStateFormat?

    public init() {}

    /// The optimizer settings of a mode ("local" with `localStateFormat` when set).
    public func optimizer(mode: String) -> OptimizerSettings {
        var o = optimizer
        if mode == "local", let localStateFormat { o.stateFormat = localStateFormat }
        return o
    }

    /// The greedy round local mode measures for `spec` (nil under the simultaneous schedule).
    public func greedyRound(_ spec: ModelSpec) -> Int? {
        guard schedule == .greedy else { return nil }
        if let round, !allRounds { return round }
        return MemoryPlanner.greedyPeakPlan(table(spec), batchSize: batchSize, chunk: chunk, optimizer: optimizer(mode: "local")).round
    }

    /// The shape table the planner reads for `spec`, with the sim heads' choice.
    public func table(_ spec: ModelSpec) -> ShapeTable {
        var t = ShapeTable(spec: spec)
        t.keepsSimOutput = simOutput == .keep
        return t
    }

    /// The spec for a mode: "local" keeps the loss, "backprop" replaces it.
    public func spec(mode: String) -> ModelSpec {
        var s = model
        if mode == "backprop" {
            s.loss = .backprop
            s.nonlinearity = Nonlinearity(rawValue: LossKind.backprop.defaultNonlinearity) ?? s.nonlinearity
        }
        return s
    }

    /// "mlp 3x1024, local loss predsim" or "vgg8b x0.5 + 1024, dim_in_decoder 1024, local loss predsim", for the report's run line.
    public var modelDescription: String {
        var chunked = chunk.map { ", local steps in chunks of \($0)" } ?? ""
        if chunk == nil && simOutput == .keep && table(model).hasKeepableSimOutput { chunked += ", sim outputs kept" }
        if let round = greedyRound(spec(mode: "local")) {
            chunked += allRounds
                ? ", greedy schedule: all \(model.hiddenBlockCount) rounds, \(steps) steps each (the largest: round \(round + 1))"
                : ", greedy schedule: round \(round + 1) of \(model.hiddenBlockCount)" + (self.round == nil ? " (its largest)" : "")
        }
        switch model.kind {
        case .mlp:
            return "mlp \(model.numLayers)x\(model.numHidden), local loss \(model.loss.rawValue)" + chunked
        case .vgg8b, .vgg11b:
            let mult = model.featMult == 1 ? "" : " x\(model.featMult)"
            return "\(model.kind.rawValue)\(mult) + \(model.numHidden), dim_in_decoder \(model.dimInDecoder), local loss \(model.loss.rawValue)" + chunked
        }
    }
}
