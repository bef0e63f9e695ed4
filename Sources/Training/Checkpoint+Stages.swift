import Foundation
import Layers

/// A pipelined run's checkpoint parts. Before every checkpoint each stage but the last writes
/// its blocks' tensors (weights, BatchNorm statistics, heads, optimizer moments) to
/// `checkpoint.stage-{s}-of-{S}.safetensors` next to the checkpoint, format `checkpoint-part/1`;
/// the last stage reads them into its network and writes the ordinary checkpoint (the same
/// bytes as one process would), then removes them.
extension Checkpoint {
    public static let partFormat = "checkpoint-part/1"

    /// The part of stage `stage` (from 0) of `stages`, in the folder of `checkpointPath`.
    public static func partPath(_ checkpointPath: String, stage: Int, of stages: Int) -> String {
        let folder = (checkpointPath as NSString).deletingLastPathComponent
        return (folder.isEmpty ? "" : folder + "/") + "checkpoint.stage-\(stage + 1)-of-\(stages).safetensors"
    }

    /// The stage that owns a checkpoint tensor: `blocks.{k}....` and `optimizer.blocks.{k}....`
    /// belong to the stage of block k, `output....` and `optimizer.output....` to the last.
    static func stage(owning name: String, placement: StagePlacement) -> Int? {
        let plain = name.hasPrefix("optimizer.") ? String(name.dropFirst("optimizer.".count)) : name
        if plain.hasPrefix("output.") { return placement.stageCount - 1 }
        let parts = plain.split(separator: ".", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "blocks", let k = Int(parts[1]) else { return nil }
        return placement.blocks.firstIndex { $0.contains(k) }
    }

    /// The optimizers of a stage's blocks (and of the output layer for the last), in
    /// `network.optimizers` order.
    static func optimizers(of network: Network, placement: StagePlacement, stage: Int) -> [Optimizer] {
        let all = network.optimizers
        precondition(all.count == network.hiddenBlockCount + 1, "a staged run has one optimizer per block and one for the output layer")
        let range = placement.blocks[stage]
        return Array(all[range]) + (stage == placement.stageCount - 1 ? [all[all.count - 1]] : [])
    }

    /// Writes stage `stage`'s tensors and optimizer state (atomically).
    static func savePart(network: Network, placement: StagePlacement, stage: Int, to path: String) throws {
        let entries = namedTensors(network).filter { self.stage(owning: $0.0, placement: placement) == stage }.map { name, t in
            SafeTensorsEntry(name: name, dtype: .f32, shape: t.shape,
                             borrowing: UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))
        } + namedMoments(network).filter { self.stage(owning: $0.0, placement: placement) == stage }.flatMap { momentEntries($0, $1) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let range = placement.blocks[stage]
        let metadata = [
            "layerwise.format": partFormat,
            "layerwise.spec": String(decoding: try encoder.encode(network.spec), as: UTF8.self),
            "layerwise.stage": "\(stage + 1)/\(placement.stageCount)",
            "layerwise.stage_blocks": "\(range.lowerBound)..<\(range.upperBound)",
            "layerwise.optimizer_steps": String(decoding: try encoder.encode(optimizers(of: network, placement: placement, stage: stage).map(\.stepCount)), as: UTF8.self),
        ]
        try SafeTensors.write(entries, metadata: metadata, to: path)
    }

    /// Reads stage `stage`'s part into `network` (its blocks' tensors, moments and step counts).
    static func loadPart(from path: String, into network: Network, placement: StagePlacement, stage: Int) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError.checkpoint(path: path, problem: "does not exist: stage \(stage + 1) did not write its part (is the run folder on a file system every stage writes to?)")
        }
        let file: SafeTensorsFile
        do { file = try SafeTensors.read(path) } catch {
            throw TrainingError.checkpoint(path: path, problem: "is damaged: \(error)")
        }
        let range = placement.blocks[stage]
        guard file.metadata["layerwise.format"] == partFormat,
              file.metadata["layerwise.stage"] == "\(stage + 1)/\(placement.stageCount)",
              file.metadata["layerwise.stage_blocks"] == "\(range.lowerBound)..<\(range.upperBound)" else {
            throw TrainingError.checkpoint(path: path, problem: "is not stage \(stage + 1) of \(placement.stageCount)'s part (format \(file.metadata["layerwise.format"] ?? "missing"), stage \(file.metadata["layerwise.stage"] ?? "missing"))")
        }
        guard let json = file.metadata["layerwise.spec"], let spec = try? JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)),
              spec == network.spec else {
            throw TrainingError.checkpoint(path: path, problem: "is for another model than \(network.spec.description)")
        }
        for (name, tensor) in namedTensors(network) where self.stage(owning: name, placement: placement) == stage {
            let info: SafeTensorsFile.TensorInfo
            do { info = try file.info(name) } catch { throw TrainingError.checkpoint(path: path, problem: "lacks tensor \(name)") }
            guard info.dtype == .f32, info.shape == tensor.shape else {
                throw TrainingError.checkpoint(path: path, problem: "tensor \(name) is \(info.dtype) \(info.shape), expected F32 \(tensor.shape)")
            }
            try file.copy(name, into: UnsafeMutableRawBufferPointer(start: tensor.pointer, count: tensor.byteCount))
        }
        for (name, moment) in namedMoments(network) where self.stage(owning: name, placement: placement) == stage {
            try readMoment(name, into: moment, from: file, path: path)
        }
        let optimizers = optimizers(of: network, placement: placement, stage: stage)
        guard let stepsJSON = file.metadata["layerwise.optimizer_steps"],
              let steps = try? JSONDecoder().decode([Int].self, from: Data(stepsJSON.utf8)), steps.count == optimizers.count else {
            throw TrainingError.checkpoint(path: path, problem: "has no readable optimizer step counts")
        }
        for (opt, s) in zip(optimizers, steps) { opt.stepCount = s }
    }
}
