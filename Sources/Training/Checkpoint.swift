import Foundation
import Layers
import MemoryLedger
import Shards
import Tensors

/// Checkpoints as safetensors files. Tensor names:
/// - `blocks.{k}.conv.weight|bias` (conv blocks) or `blocks.{k}.linear.weight|bias`,
///   `blocks.{k}.bn.weight|bias|running_mean|running_var`,
///   `output.weight|bias`: the model (what `eval` needs);
/// - `blocks.{k}.pred.weight|bias`, `blocks.{k}.sim.weight`, `blocks.{k}.bpf.decoder.weight|bias`,
///   `blocks.{k}.bpf.projection|feedback`: local heads and their fixed random matrices;
/// - `optimizer.{parameter name}.{m|v|momentum}`: optimizer moments.
/// Metadata: `layerwise.format` (`checkpoint/1`), `layerwise.spec` (the ModelSpec as JSON),
/// `layerwise.state` (TrainerState as JSON: epoch, loader cursor, step, epoch sums) and
/// `layerwise.optimizer_steps` (each optimizer's step count, JSON array) and
/// `layerwise.normalization` (the mean and std every batch was normalised with, JSON; absent
/// from checkpoints written before it was recorded, whose runs used Fashion-MNIST's).
/// The file is written atomically, so a kill leaves the previous checkpoint intact.
public enum Checkpoint {
    public static let format = "checkpoint/1"

    static func namedTensors(_ network: Network) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for b in network.convBlocks {
            for p in b.localParameters { out.append((p.name, p.value)) }
            out.append(("blocks.\(b.index).bn.running_mean", b.runningMean))
            out.append(("blocks.\(b.index).bn.running_var", b.runningVar))
            if let heads = b.heads { out += heads.fixedTensors }
        }
        for b in network.blocks {
            for p in b.localParameters { out.append((p.name, p.value)) }
            out.append(("blocks.\(b.index).bn.running_mean", b.runningMean))
            out.append(("blocks.\(b.index).bn.running_var", b.runningVar))
            if let heads = b.heads { out += heads.fixedTensors }
        }
        for p in network.output.parameters { out.append((p.name, p.value)) }
        for opt in network.optimizers {
            let suffixes = opt.settings.kind == .adam ? ["m", "v"] : ["momentum"]
            for p in opt.parameters {
                for (i, s) in p.state.enumerated() { out.append(("optimizer.\(p.name).\(suffixes[i])", s)) }
            }
        }
        return out
    }

    public static func save(network: Network, state: TrainerState, normalization: Normalization? = nil, to path: String) throws {
        let entries = namedTensors(network).map { name, t in
            SafeTensorsEntry(name: name, dtype: .f32, shape: t.shape,
                             borrowing: UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = [
            "layerwise.format": format,
            "layerwise.spec": String(decoding: try encoder.encode(network.spec), as: UTF8.self),
            "layerwise.state": String(decoding: try encoder.encode(state), as: UTF8.self),
            "layerwise.optimizer_steps": String(decoding: try encoder.encode(network.optimizers.map(\.stepCount)), as: UTF8.self),
        ]
        if let normalization {
            metadata["layerwise.normalization"] = String(decoding: try encoder.encode(normalization), as: UTF8.self)
        }
        try SafeTensors.write(entries, metadata: metadata, to: path)
    }

    /// The normalisation a checkpoint's run applied, or nil when it predates the record.
    public static func normalization(at path: String) throws -> Normalization? {
        let file = try open(path)
        guard let json = file.metadata["layerwise.normalization"] else { return nil }
        guard let recorded = try? JSONDecoder().decode(Normalization.self, from: Data(json.utf8)) else {
            throw TrainingError.checkpoint(path: path, problem: "has an unreadable layerwise.normalization entry")
        }
        return recorded
    }

    /// Reads the model spec stored in a checkpoint.
    public static func spec(at path: String) throws -> ModelSpec {
        let file = try open(path)
        return try decodeSpec(file, path: path)
    }

    static func open(_ path: String) throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.checkpoint(path: path, problem: "does not exist")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(path) } catch {
            throw TrainingError.checkpoint(path: path, problem: "is damaged: \(error)")
        }
        guard file.metadata["layerwise.format"] == format else {
            throw TrainingError.checkpoint(path: path, problem: "is not a Layerwise checkpoint (format \(file.metadata["layerwise.format"] ?? "missing"), expected \(format))")
        }
        return file
    }

    static func decodeSpec(_ file: SafeTensorsFile, path: String) throws -> ModelSpec {
        guard let json = file.metadata["layerwise.spec"],
              let spec = try? JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)) else {
            throw TrainingError.checkpoint(path: path, problem: "has no readable model spec")
        }
        if let problem = implausibility(of: spec, storedBytes: file.tensors.reduce(0) { $0 + $1.byteCount }) {
            throw TrainingError.checkpoint(path: path, problem: "has a model spec that no run writes: \(problem)")
        }
        return spec
    }

    /// Why a spec read from a file cannot be built, or nil. Checked before any tensor is
    /// allocated from it: every size positive and small enough that no product overflows, a
    /// VGG input that survives its poolings, and a parameter count whose float32 bytes the
    /// file actually stores (so a small file cannot ask for gigabytes).
    static func implausibility(of spec: ModelSpec, storedBytes: Int) -> String? {
        let inputValues = spec.inputShape.reduce(1) { product, n in
            let (next, overflow) = product.multipliedReportingOverflow(by: n)
            return overflow || n < 1 ? Int.max : next
        }
        guard spec.inputShape.count == 3, inputValues <= 1 << 22 else {
            return "input shape \(spec.inputShape) is not (C, H, W) with at most 2^22 values"
        }
        guard (1...(1 << 20)).contains(spec.classes) else { return "\(spec.classes) classes" }
        guard (1...(1 << 10)).contains(spec.numLayers) else { return "\(spec.numLayers) hidden layers" }
        guard (1...(1 << 20)).contains(spec.numHidden) else { return "\(spec.numHidden) hidden units" }
        guard (1...(1 << 24)).contains(spec.dimInDecoder) else { return "dimInDecoder \(spec.dimInDecoder)" }
        guard spec.featMult.isFinite, spec.featMult > 0, spec.featMult <= 64 else { return "feature multiplier \(spec.featMult)" }
        guard spec.beta.isFinite, spec.dropout.isFinite, spec.dropout >= 0, spec.dropout < 1 else {
            return "beta \(spec.beta), dropout \(spec.dropout)"
        }
        let pools = ModelSpec.layerList(spec.kind).filter { $0 == .maxPool }.count
        guard spec.inputShape[1] >> pools >= 1, spec.inputShape[2] >> pools >= 1 else {
            return "\(spec.kind.rawValue) halves its input \(pools) times but the input is \(spec.inputShape[1])x\(spec.inputShape[2])"
        }
        // With the bounds above no term of the count overflows (at most 2^57 per layer).
        let weightBytes = spec.parameterCount * MemoryLayout<Float>.size
        guard weightBytes <= storedBytes else {
            return "its \(spec.parameterCount) parameters need \(weightBytes) bytes but the file stores \(storedBytes)"
        }
        return nil
    }

    /// An inference-only network of the checkpoint's model: only the tensors `eval` needs are
    /// read (no heads, no optimizer state), into tensors the network books as `weights`. The
    /// file's mapping is released when this returns.
    public static func inferenceNetwork(from path: String, microBatch: Int = InferenceNetwork.defaultMicroBatch,
                                        ledger: Ledger = .shared) throws -> InferenceNetwork {
        let file = try open(path)
        let spec = try decodeSpec(file, path: path)
        return try InferenceNetwork(spec: spec, parameters: .load { name, tensor in
            try read(name, into: tensor, from: file, path: path)
        }, microBatch: microBatch, ledger: ledger)
    }

    /// Copies tensor `name` of `file` into `tensor`, after checking that it exists and has
    /// the tensor's dtype and shape; errors name the checkpoint and the tensor.
    private static func read(_ name: String, into tensor: Tensor, from file: SafeTensorsFile, path: String) throws {
        let info: SafeTensorsFile.TensorInfo
        do { info = try file.info(name) } catch {
            throw TrainingError.checkpoint(path: path, problem: "lacks tensor \(name)")
        }
        guard info.dtype == .f32, info.shape == tensor.shape else {
            throw TrainingError.checkpoint(path: path, problem: "tensor \(name) is \(info.dtype) \(info.shape), expected F32 \(tensor.shape)")
        }
        try file.copy(name, into: UnsafeMutableRawBufferPointer(start: tensor.pointer, count: tensor.byteCount))
    }

    /// Loads weights (and, if `includeTraining`, heads and optimizer state) into `network`,
    /// after checking that the checkpoint was made for the same model. Returns the trainer state.
    @discardableResult
    public static func load(from path: String, into network: Network, includeTraining: Bool = true) throws -> TrainerState {
        let file = try open(path)
        let spec = try decodeSpec(file, path: path)
        guard includeTraining ? spec == network.spec : spec.inferenceEquivalent(to: network.spec) else {
            throw TrainingError.checkpoint(path: path, problem: "is for another model (\(spec.description)); this run builds \(network.spec.description)")
        }
        for (name, tensor) in namedTensors(network) {
            if !includeTraining && (name.hasPrefix("optimizer.") || name.contains(".pred.") || name.contains(".sim.") || name.contains(".bpf.")) { continue }
            try read(name, into: tensor, from: file, path: path)
        }
        guard let stateJSON = file.metadata["layerwise.state"],
              let state = try? JSONDecoder().decode(TrainerState.self, from: Data(stateJSON.utf8)) else {
            throw TrainingError.checkpoint(path: path, problem: "has no readable trainer state")
        }
        if includeTraining {
            guard let stepsJSON = file.metadata["layerwise.optimizer_steps"],
                  let steps = try? JSONDecoder().decode([Int].self, from: Data(stepsJSON.utf8)),
                  steps.count == network.optimizers.count else {
                throw TrainingError.checkpoint(path: path, problem: "has no readable optimizer step counts")
            }
            for (opt, s) in zip(network.optimizers, steps) { opt.stepCount = s }
        }
        return state
    }
}

extension ModelSpec {
    /// Same network at inference time (heads and loss weights do not matter for predictions).
    func inferenceEquivalent(to other: ModelSpec) -> Bool {
        kind == other.kind && inputShape == other.inputShape && classes == other.classes
            && numLayers == other.numLayers && numHidden == other.numHidden && nonlinearity == other.nonlinearity
            && featMult == other.featMult
    }
}
