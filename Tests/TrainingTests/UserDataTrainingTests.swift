import DatasetTestSupport
import Foundation
import Layers
import MemoryLedger
import Shards
import XCTest
@testable import Training

/// Training on data that is not Fashion-MNIST's defaults: statistics from the manifest, carried
/// through checkpoint and config into `eval`; old manifests; splits checked before the first
/// step; augmentation only when asked for.
final class UserDataTrainingTests: XCTestCase {
    var directory = ""
    var data: String { directory + "/fashion-mnist" }

    override func setUpWithError() throws {
        try RequiredDataset.fashionMNIST.require()
        directory = FashionMNISTSlice.temporaryDirectory("userdata")
        try FashionMNISTSlice.make(in: directory, train: 400, test: 100)
    }

    override func tearDown() {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }

    func config(_ run: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.data = data
        c.run = directory + "/" + run
        c.model.numLayers = 1
        c.model.numHidden = 32
        c.epochs = 1
        c.batchSize = 50
        c.milestones = []
        c.threads = 1
        return c
    }

    func testTrainingSplitStatisticsNormaliseEverySplitAndRoundTripThroughCheckpointIntoEval() throws {
        let manifest = try DatasetManifest.load(directory: data)
        let train = try XCTUnwrap(manifest.splits["train"]?.statistics)
        let test = try XCTUnwrap(manifest.splits["test"]?.statistics)
        XCTAssertNotEqual(train.mean, test.mean, "the two splits' own statistics differ, so using the wrong one would show")
        var lines: [String] = []
        let trainer = try Trainer(config: config("stats"), ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        XCTAssertTrue(lines.first?.hasPrefix("data \(data): train 400 records, test 100 records, 28x28x1 uint8 images, 10 classes; augmentation crop (the default") ?? false, "\(lines)")
        XCTAssertTrue(lines.first?.contains("normalised with train's statistics from the manifest") ?? false, "\(lines)")
        try trainer.run()

        let saved = try RunFolder(path: directory + "/stats").readConfig()
        XCTAssertEqual(saved.mean, train.mean)
        XCTAssertEqual(saved.std, train.std)
        XCTAssertEqual(saved.normalize, "dataset")
        XCTAssertEqual(saved.augment, .crop)
        let checkpoint = directory + "/stats/checkpoint.safetensors"
        XCTAssertEqual(try Checkpoint.normalization(at: checkpoint), train.normalization)

        // eval from the run folder and from the checkpoint alone: the test split normalised with
        // the training split's statistics, the same error the trainer measured.
        let expected = try trainer.evaluate(split: "test")
        let fromRun = try Evaluation.run(runFolder: directory + "/stats", checkpoint: nil, data: nil, split: "test", threads: 1)
        let fromCheckpoint = try Evaluation.run(runFolder: nil, checkpoint: checkpoint, data: data, split: "test", threads: 1)
        XCTAssertEqual(fromRun.error, expected)
        XCTAssertEqual(fromCheckpoint.error, expected)
        // With the test split's own statistics (what each loader used to compute for itself),
        // the inputs differ: the recorded normalisation is what makes the two agree.
        var own = saved
        (own.mean, own.std) = (test.mean, test.std)
        let network = Network(spec: trainer.network.spec, seed: 0, ledger: Ledger())
        try Checkpoint.load(from: checkpoint, into: network, includeTraining: false)
        let dataset = try ShardDataset(directory: data)
        let recorded = try Evaluator.measure(network: try Evaluator.inferenceNetwork(sharing: network), dataset: dataset, split: "test", config: saved, ledger: Ledger())
        XCTAssertEqual(recorded.error, expected)
        let loader = try BatchLoader(source: try dataset.split("test"), config: Trainer.loaderConfig(own, training: false), ledger: Ledger())
        let reference = try BatchLoader(source: try dataset.split("test"), config: Trainer.loaderConfig(saved, training: false), ledger: Ledger())
        loader.startEpoch(0)
        reference.startEpoch(0)
        let a = try XCTUnwrap(try loader.nextBatch()), b = try XCTUnwrap(try reference.nextBatch())
        XCTAssertNotEqual(a.images.pointer[0], b.images.pointer[0])
    }

    func testManifestWithoutStatisticsStillTrainsWithStatisticsComputedOnceFromTheTrainingSplit() throws {
        let path = data + "/manifest.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        var splits = json["splits"] as! [String: Any]
        for name in ["train", "test"] {
            var split = splits[name] as! [String: Any]
            split["statistics"] = nil
            splits[name] = split
        }
        json["splits"] = splits
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        XCTAssertNil(try DatasetManifest.load(directory: data).splits["train"]!.statistics)

        var lines: [String] = []
        let trainer = try Trainer(config: config("old"), ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        XCTAssertTrue(lines.first?.contains("computed now (the manifest has none") ?? false, "\(lines)")
        let metrics = try trainer.run()
        XCTAssertEqual(metrics.count, 1)
        XCTAssertLessThan(metrics[0].testError ?? 100, 80, "it learns")
        let computed = try Normalization.compute(source: try ShardDataset(directory: data).split("train"), ledger: Ledger())
        let saved = try RunFolder(path: directory + "/old").readConfig()
        XCTAssertEqual(saved.mean, computed.mean)
        XCTAssertEqual(saved.std, computed.std)
        XCTAssertEqual(saved.normalize, "dataset-computed")
    }

    func testRunStartedBeforeNamedAugmentationAndStatisticsResumesAsItRan() throws {
        // A config.json as runs wrote it before: augment true, Fashion-MNIST's mean and std,
        // no normalize key; the resumed run must use crop+flip and those values.
        var first = config("legacy")
        first.epochs = 1
        first.augment = .cropFlip
        (first.mean, first.std) = ([0.286], [0.353])
        try Trainer(config: first, ledger: Ledger(), showProgress: false, log: { _ in }).run()
        let path = directory + "/legacy/config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["augment"] = true
        json["normalize"] = nil
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))

        var again = config("legacy")  // what the CLI builds when the user repeats the old flags
        again.epochs = 2
        let resumed = try Trainer(config: again, resume: true, ledger: Ledger(), showProgress: false, log: { _ in })
        XCTAssertEqual(resumed.config.augment, .cropFlip)
        XCTAssertEqual(resumed.config.mean, [0.286])
        XCTAssertEqual(resumed.config.std, [0.353])
        XCTAssertEqual(try resumed.run().count, 1)
    }

    func testMissingOrMismatchedSplitFailsBeforeTheFirstStepNamingTheSplit() throws {
        func assertRefused(_ c: TrainingConfig, mentioning text: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in }), file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(text), "\(error) does not mention \(text)", file: file, line: line)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: c.run + "/config.json"), "refused before the run folder was written", file: file, line: line)
        }
        var c = config("missing-test")
        c.testSplit = "validation"
        assertRefused(c, mentioning: "--test-split validation: no such split in \(data) (it has: test, train)")
        c = config("missing-train")
        c.trainSplit = "training"
        assertRefused(c, mentioning: "--train-split training: no such split in \(data) (it has: test, train)")
        c = config("channels")
        (c.mean, c.std) = ([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])
        assertRefused(c, mentioning: "--normalize gives 3 mean values but the images have 1 channel")
        // A damaged shard of the test split is found now, not after an epoch of training.
        let testShard = try ShardDataset(directory: data).manifest.splits["test"]!.shards[0].file
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/" + testShard))
        try handle.truncate(atOffset: 100)
        try handle.close()
        assertRefused(config("damaged"), mentioning: "--test-split test: split test of \(data) cannot be read")
        // --test-split none trains without evaluating.
        c = config("no-test")
        c.testSplit = nil
        let metrics = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in }).run()
        XCTAssertNil(metrics[0].testError)
    }

    func testAugmentNoneGivesUnaugmentedBatchesAndCropNeverFlips() throws {
        let dataset = try ShardDataset(directory: data)
        let layout = try ImageLayout(schema: dataset.schema)
        XCTAssertEqual(AugmentRecipe.crop.augmentation(height: 28, width: 28), Augmentation(cropPadding: 2, horizontalFlip: false))
        XCTAssertEqual(AugmentRecipe.cropFlip.augmentation(height: 28, width: 28), .fashionMNIST)
        XCTAssertNil(AugmentRecipe.crop.augmentation(height: 1, width: 1), "feature vectors are never cropped")
        func firstBatch(_ recipe: AugmentRecipe?) throws -> [Float] {
            var c = config("batches")
            (c.mean, c.std) = ([0], [1])
            c.augment = recipe
            var loaderConfig = Trainer.loaderConfig(c, training: true, layout: layout)
            loaderConfig.threads = 0
            let loader = try BatchLoader(source: try dataset.split("train"), config: loaderConfig, ledger: Ledger())
            loader.startEpoch(0)
            let batch = try XCTUnwrap(try loader.nextBatch())
            return Array(UnsafeBufferPointer(start: batch.images.pointer, count: batch.count * 784))
        }
        // Same seed, same record order: with none, each image is exactly its pixels / 255.
        let none = try firstBatch(AugmentRecipe.none)
        let plain = try firstBatch(nil)  // nil in a loader config: no augmentation at all
        XCTAssertEqual(none, plain)
        XCTAssertNotEqual(try firstBatch(.crop), none, "a crop moves pixels, so the test would notice one")
        let pixels = Set(none.map { Int(($0 * 255).rounded()) })
        XCTAssertTrue(none.allSatisfy { $0 >= 0 && $0 <= 1 }, "no padding and no other transform")
        XCTAssertGreaterThan(pixels.count, 100)
    }
}
