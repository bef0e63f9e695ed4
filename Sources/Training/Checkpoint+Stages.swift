import Foundation
import Layers
import Shards

/// A pipelined run's checkpoint. Each stage holds only its blocks, so before every checkpoint
/// each stage writes its part, `checkpoint.stage-{s}-of-{S}.safetensors` next to the
/// checkpoint (format `checkpoint-part/1`: its blocks' tensors, weights, BatchNorm statistics,
/// heads, then their optimizer moments; the last stage's also the output layer's); then the
/// last stage writes the ordinary checkpoint from the parts' bytes, in the order one process
/// writes them (blocks, then the output layer; then every moment in the same order), with the
/// same metadata: the same file as a one-process run's, read as one by `eval`, by a one-process
/// run and by a staged run (each stage loading its blocks). The parts are removed after.
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

    /// Writes the tensors and optimizer state of `network`, stage `stage`'s (atomically).
    static func savePart(network: Network, placement: StagePlacement, stage: Int, to path: String) throws {
        precondition(network.heldBlocks == placement.blocks[stage], "stage \(stage + 1) holds \(placement.blocks[stage]), the network \(network.heldBlocks)")
        let entries = namedTensors(network).filter { self.stage(owning: $0.0, placement: placement) == stage }.map { name, t in
            SafeTensorsEntry(name: name, dtype: .f32, shape: t.shape,
                             borrowing: UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))
        } + namedMoments(network).flatMap { momentEntries($0, $1) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metadata = [
            "layerwise.format": partFormat,
            "layerwise.spec": String(decoding: try encoder.encode(network.spec), as: UTF8.self),
            "layerwise.stage": "\(stage + 1)/\(placement.stageCount)",
            "layerwise.stage_blocks": "\(network.heldBlocks.lowerBound)..<\(network.heldBlocks.upperBound)",
            "layerwise.optimizer_steps": String(decoding: try encoder.encode(network.optimizers.map(\.stepCount)), as: UTF8.self),
        ]
        try SafeTensors.write(entries, metadata: metadata, to: path)
    }

    /// Opens stage `stage`'s part after checking that it is that stage's, of `spec`.
    static func openPart(_ path: String, stage: Int, placement: StagePlacement, spec: ModelSpec) throws -> SafeTensorsFile {
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
        guard let json = file.metadata["layerwise.spec"], let partSpec = try? JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)),
              partSpec == spec else {
            throw TrainingError.checkpoint(path: path, problem: "is for another model than \(spec.description)")
        }
        return file
    }

    /// Writes the checkpoint of the whole network to `path` from every stage's part.
    static func mergeParts(checkpoint path: String, placement: StagePlacement, spec: ModelSpec, state: TrainerState,
                           normalization: Normalization?) throws {
        let files = try placement.blocks.indices.map {
            try openPart(partPath(path, stage: $0, of: placement.stageCount), stage: $0, placement: placement, spec: spec)
        }
        var weights: [SafeTensorsEntry] = [], moments: [SafeTensorsEntry] = []
        var steps: [Int] = []
        for file in files {
            for t in file.tensors {  // in the order the stage wrote them
                let entry = SafeTensorsEntry(name: t.name, dtype: t.dtype, shape: t.shape, borrowing: try file.mappedBytes(t.name))
                if t.name.hasPrefix("optimizer.") { moments.append(entry) } else { weights.append(entry) }
            }
            guard let json = file.metadata["layerwise.optimizer_steps"], let counts = try? JSONDecoder().decode([Int].self, from: Data(json.utf8)) else {
                throw TrainingError.checkpoint(path: file.path, problem: "has no readable optimizer step counts")
            }
            steps += counts
        }
        let metadata = try self.metadata(spec: spec, state: state, optimizerSteps: steps, normalization: normalization)
        try withExtendedLifetime(files) {
            try SafeTensors.write(weights + moments, metadata: metadata, to: path)
        }
    }
}
