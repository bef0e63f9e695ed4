import Layers
import Shards

/// The data a run reads, checked against the model before the first step: the training and
/// test splits exist (an error names the flag, the split and the splits there are), their shards
/// open and agree with the manifest, they hold records, the records are images the loader can
/// read, and the model fits their shape. One clear error instead of a failure an epoch later.
struct DataCheck {
    let train: ShardSplit
    let test: ShardSplit?
    let layout: ImageLayout
    /// "train 60000 records, test 10000 records, 28x28x1 uint8 images, 10 classes".
    let summary: String

    init(dataset: ShardDataset, config: TrainingConfig) throws {
        let directory = dataset.directory
        if let cache = dataset.manifest.handOff {
            throw TrainingError.data("--data \(directory) is a hand-off cache (round \(cache.round) of run \(cache.run), \(cache.precision.rawValue) \(cache.shapeText)), not a dataset of images: a greedy run reads it itself through --cache-handoffs, with no normalisation or augmentation")
        }
        func open(_ name: String, flag: String) throws -> ShardSplit {
            guard dataset.manifest.splits[name] != nil else {
                throw TrainingError.data("\(flag) \(name): no such split in \(directory) (it has: \(dataset.splitNames.joined(separator: ", ")))")
            }
            let split: ShardSplit
            do { split = try dataset.split(name) } catch {
                throw TrainingError.data("\(flag) \(name): split \(name) of \(directory) cannot be read: \(error)")
            }
            guard split.recordCount > 0 else { throw TrainingError.data("\(flag) \(name): split \(name) of \(directory) has no records") }
            return split
        }
        train = try open(config.trainSplit, flag: "--train-split")
        test = try config.testSplit.map { try open($0, flag: "--test-split") }
        let names = [config.trainSplit] + (config.testSplit.map { [$0] } ?? [])
        do { layout = try ImageLayout(schema: dataset.schema) } catch {
            throw TrainingError.data("split\(names.count == 1 ? "" : "s") \(names.joined(separator: " and ")) of \(directory) cannot be read as images (\(error)); train needs an `image` field (uint8 or float32, [H, W] or [H, W, C]) and one integer `label`")
        }
        guard dataset.schema.classCount >= 2 else {
            throw TrainingError.data("\(directory) has \(dataset.schema.classCount) class; a classifier needs at least 2")
        }
        let spec = try Trainer.resolvedSpec(config.model, schema: dataset.schema)
        let pools = ModelSpec.layerList(spec.kind).filter { if case .maxPool = $0 { return true } else { return false } }.count
        if pools > 0 && (layout.height >> pools < 1 || layout.width >> pools < 1) {
            throw TrainingError.data("--model \(spec.kind.rawValue) halves the image \(pools) times but splits \(names.joined(separator: " and ")) of \(directory) hold \(layout.height)x\(layout.width) images (it needs at least \(1 << pools)x\(1 << pools))")
        }
        var parts = ["\(config.trainSplit) \(train.recordCount) records"]
        if let test, let name = config.testSplit { parts.append("\(name) \(test.recordCount) records") } else { parts.append("no test split") }
        parts.append("\(layout.height)x\(layout.width)x\(layout.channels) \(layout.pixelType == .uint8 ? "uint8" : "float32") images, \(dataset.schema.classCount) classes")
        summary = parts.joined(separator: ", ")
    }

    /// One mean and std for every channel, or one per channel.
    func checkNormalization(mean: [Float], std: [Float]) throws {
        for (name, values) in [("mean", mean), ("std", std)] where values.count != 1 && values.count != layout.channels {
            throw TrainingError.invalidConfig("--normalize gives \(values.count) \(name) values but the images have \(layout.channels) channel\(layout.channels == 1 ? "" : "s") (give one value, or one per channel)")
        }
    }
}
