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
/// - `optimizer.{parameter name}.{m|v|momentum}`: optimizer moments, F32 (`--optimizer-state
///   fp32`) or BF16 (`bf16`), in the parameter's shape; with `int8` each moment is two tensors,
///   `optimizer.{parameter name}.{m|v|momentum}.codes` (U8, the parameter's shape) and
///   `....scales` (F32, one per block of 256 values of the flattened tensor). Loading converts
///   between formats, so a run may resume with another `--optimizer-state`.
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
        // A greedy run's blocks after its round are dormant: nothing of them is saved or loaded
        // (a fresh network draws them again, the same, when their round starts).
        for b in network.convBlocks where !b.isDormant {
            for p in b.localParameters { out.append((p.name, p.value)) }
            out.append(("blocks.\(b.index).bn.running_mean", b.runningMean))
            out.append(("blocks.\(b.index).bn.running_var", b.runningVar))
            if let heads = b.heads { out += heads.fixedTensors }
        }
        for b in network.blocks where !b.isDormant {
            for p in b.localParameters { out.append((p.name, p.value)) }
            out.append(("blocks.\(b.index).bn.running_mean", b.runningMean))
            out.append(("blocks.\(b.index).bn.running_var", b.runningVar))
            if let heads = b.heads { out += heads.fixedTensors }
        }
        for p in network.output.parameters { out.append((p.name, p.value)) }
        return out
    }

    /// Every optimizer moment under its name, `optimizer.{parameter}.{m|v|momentum}`.
    static func namedMoments(_ network: Network) -> [(String, OptimizerMoment)] {
        var out: [(String, OptimizerMoment)] = []
        for opt in network.optimizers {
            let suffixes = opt.settings.kind == .adam ? ["m", "v"] : ["momentum"]
            for p in opt.parameters {
                for (i, s) in p.state.enumerated() { out.append(("optimizer.\(p.name).\(suffixes[i])", s)) }
            }
        }
        return out
    }

    /// The safetensors entries of one moment in its own format (borrowing its bytes).
    static func momentEntries(_ name: String, _ moment: OptimizerMoment) -> [SafeTensorsEntry] {
        switch moment.storage {
        case .fp32(let t):
            return [SafeTensorsEntry(name: name, dtype: .f32, shape: t.shape, borrowing: UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))]
        case .bf16(let b):
            return [SafeTensorsEntry(name: name, dtype: .bf16, shape: moment.shape, borrowing: UnsafeRawBufferPointer(start: b.pointer, count: b.byteCount))]
        case .int8(let codes, let scales):
            return [SafeTensorsEntry(name: name + ".codes", dtype: .u8, shape: moment.shape,
                                     borrowing: UnsafeRawBufferPointer(start: codes.pointer, count: codes.byteCount)),
                    SafeTensorsEntry(name: name + ".scales", dtype: .f32, shape: [scales.count],
                                     borrowing: UnsafeRawBufferPointer(start: scales.pointer, count: scales.byteCount))]
        }
    }

    /// Reads moment `name` from `file` in whichever format the file holds it: the same format
    /// is copied bit for bit; another is decoded to fp32 and stored in the moment's format.
    static func readMoment(_ name: String, into moment: OptimizerMoment, from file: SafeTensorsFile, path: String) throws {
        func fail(_ problem: String) -> TrainingError { TrainingError.checkpoint(path: path, problem: problem) }
        if let info = try? file.info(name) {
            guard info.shape == moment.shape, info.dtype == .f32 || info.dtype == .bf16 else {
                throw fail("tensor \(name) is \(info.dtype) \(info.shape), expected F32 or BF16 \(moment.shape)")
            }
            switch (info.dtype, moment.storage) {
            case (.f32, .fp32(let t)):
                try file.copy(name, into: UnsafeMutableRawBufferPointer(start: t.pointer, count: t.byteCount))
            case (.bf16, .bf16(let b)):
                try file.copy(name, into: UnsafeMutableRawBufferPointer(start: b.pointer, count: b.byteCount))
            case (.f32, _):
                let values = try file.floats(name)
                values.withUnsafeBufferPointer { moment.assign($0) }
            default:  // bf16 into fp32 or int8
                let values = try file.withBytes(name) { raw in
                    raw.bindMemory(to: UInt16.self).map { ElementwiseKernels.bf16Value($0) }
                }
                values.withUnsafeBufferPointer { moment.assign($0) }
            }
            return
        }
        guard let codesInfo = try? file.info(name + ".codes"), let scalesInfo = try? file.info(name + ".scales") else {
            throw fail("lacks tensor \(name) (or \(name).codes and \(name).scales)")
        }
        let blocks = ElementwiseKernels.quantizationBlocks(moment.count)
        guard codesInfo.dtype == .u8, codesInfo.shape == moment.shape, scalesInfo.dtype == .f32, scalesInfo.shape == [blocks] else {
            throw fail("tensors \(name).codes and .scales are \(codesInfo.dtype) \(codesInfo.shape) and \(scalesInfo.dtype) \(scalesInfo.shape), expected U8 \(moment.shape) and F32 [\(blocks)]")
        }
        if case .int8(let codes, let scales) = moment.storage {
            try file.copy(name + ".codes", into: UnsafeMutableRawBufferPointer(start: codes.pointer, count: codes.byteCount))
            try file.copy(name + ".scales", into: UnsafeMutableRawBufferPointer(start: scales.pointer, count: scales.byteCount))
            return
        }
        let codes = try file.array(name + ".codes", as: UInt8.self), scales = try file.floats(name + ".scales")
        var values = [Float](repeating: 0, count: moment.count)
        let block = ElementwiseKernels.quantizationBlock
        values.withUnsafeMutableBufferPointer { v in
            codes.withUnsafeBufferPointer { c in
                for (k, start) in stride(from: 0, to: moment.count, by: block).enumerated() {
                    ElementwiseKernels.dequantize(c.baseAddress! + start, scale: scales[k], into: v.baseAddress! + start,
                                                  count: min(block, moment.count - start), signed: moment.isSigned)
                }
            }
        }
        values.withUnsafeBufferPointer { moment.assign($0) }
    }

    public static func save(network: Network, state: TrainerState, normalization: Normalization? = nil, to path: String) throws {
        let entries = namedTensors(network).map { name, t in
            SafeTensorsEntry(name: name, dtype: .f32, shape: t.shape,
                             borrowing: UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))
        } + namedMoments(network).flatMap { momentEntries($0, $1) }
        let metadata = try self.metadata(spec: network.spec, state: state, optimizerSteps: network.optimizers.map(\.stepCount),
                                          normalization: normalization)
        try SafeTensors.write(entries, metadata: metadata, to: path)
    }

    /// A checkpoint's metadata (the staged merge writes the same).
    static func metadata(spec: ModelSpec, state: TrainerState, optimizerSteps: [Int], normalization: Normalization?) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = [
            "layerwise.format": format,
            "layerwise.spec": String(decoding: try encoder.encode(spec), as: UTF8.self),
            "layerwise.state": String(decoding: try encoder.encode(state), as: UTF8.self),
            "layerwise.optimizer_steps": String(decoding: try encoder.encode(optimizerSteps), as: UTF8.self),
        ]
        if let normalization {
            metadata["layerwise.normalization"] = String(decoding: try encoder.encode(normalization), as: UTF8.self)
        }
        return metadata
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
        // A greedy checkpoint stores the blocks up to its round (the later ones are dormant).
        let round = file.metadata["layerwise.state"].flatMap { try? JSONDecoder().decode(TrainerState.self, from: Data($0.utf8)) }?.round
        if let problem = implausibility(of: spec, storedBytes: file.tensors.reduce(0) { $0 + $1.byteCount }, greedyRound: round) {
            throw TrainingError.checkpoint(path: path, problem: "has a model spec that no run writes: \(problem)")
        }
        return spec
    }

    /// Why a spec read from a file cannot be built, or nil. Checked before any tensor is
    /// allocated from it: every size positive and small enough that no product overflows, a
    /// VGG input that survives its poolings, and a parameter count whose float32 bytes the
    /// file actually stores (so a small file cannot ask for gigabytes).
    static func implausibility(of spec: ModelSpec, storedBytes: Int, greedyRound: Int? = nil) -> String? {
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
        let parameters = greedyRound.map { round in
            ShapeTable(spec: spec, engine: .im2col).layers.filter { $0.kind == .output || $0.index <= round }.reduce(0) { $0 + $1.params }
        } ?? spec.parameterCount
        let weightBytes = parameters * MemoryLayout<Float>.size
        guard weightBytes <= storedBytes else {
            return "its \(parameters) parameters\(greedyRound.map { " (blocks up to greedy round \($0 + 1) and the output layer)" } ?? "") need \(weightBytes) bytes but the file stores \(storedBytes)"
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
            if !includeTraining && (name.contains(".pred.") || name.contains(".sim.") || name.contains(".bpf.")) { continue }
            try read(name, into: tensor, from: file, path: path)
        }
        if includeTraining {
            for (name, moment) in namedMoments(network) { try readMoment(name, into: moment, from: file, path: path) }
        }
        guard let stateJSON = file.metadata["layerwise.state"],
              let state = try? JSONDecoder().decode(TrainerState.self, from: Data(stateJSON.utf8)) else {
            throw TrainingError.checkpoint(path: path, problem: "has no readable trainer state")
        }
        if includeTraining {
            // A pipeline stage's network has its blocks' optimizers (and the output layer's, on
            // the last stage) of the whole network's: one per block, then the output layer's.
            let indices = network.holdsAllBlocks ? Array(network.optimizers.indices)
                : Array(network.heldBlocks) + (network.holdsOutput ? [network.hiddenBlockCount] : [])
            let expected = network.holdsAllBlocks ? network.optimizers.count : network.hiddenBlockCount + 1
            guard let stepsJSON = file.metadata["layerwise.optimizer_steps"],
                  let steps = try? JSONDecoder().decode([Int].self, from: Data(stepsJSON.utf8)),
                  steps.count == expected, indices.count == network.optimizers.count else {
                throw TrainingError.checkpoint(path: path, problem: "has no readable optimizer step counts")
            }
            for (opt, i) in zip(network.optimizers, indices) { opt.stepCount = steps[i] }
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
