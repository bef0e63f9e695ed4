import DatasetTestSupport
import Foundation
import Layers
import MemoryLedger
import Randomness
import Shards
import Tensors
import XCTest
@testable import Training

/// The inference-only network gives the training network's evaluation results: each logit within
/// the rounding bound of `InferenceReference` (both are Float32 evaluations of the same model,
/// differing only in micro-batching, which changes GEMM shapes and so summation orders), the same
/// predicted classes wherever the bound separates the top logits, and the same error counts.
final class InferenceAgreementTests: XCTestCase {
    /// The logits `Network.evaluate` computes (its blocks' evaluation forwards, then the output).
    private func trainingNetworkLogits(_ network: Network, _ images: Tensor) -> [Float] {
        var x = images
        for b in network.convBlocks { x = b.forwardEval(x) }
        for b in network.blocks { x = b.forwardEval(x) }
        return network.output.logits(x, phase: .evaluate).array
    }

    private func inferenceLogits(_ network: InferenceNetwork, _ images: Tensor) -> [Float] {
        var out: [Float] = []
        network.forEachMicroBatch(images) { _, logits in out += logits.array }
        return out
    }

    private func modelTensors(_ network: Network) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, t) in Checkpoint.namedTensors(network) where !name.hasPrefix("optimizer.") { out[name] = t.array }
        return out
    }

    private struct Comparison {
        var worstRatio = 0.0       // largest |difference| / (2 bound) over logits
        var largestDifference = 0.0
        var classMismatches = 0
        var unresolvedMismatches = 0  // mismatches the bound does not explain
        var inferenceCorrect = 0
        var trainingCorrect = 0
    }

    /// The exact logits of each row of `images` and their rounding bounds.
    private func reference(_ network: Network, _ images: Tensor) -> [(exact: [Double], bound: [Double])] {
        let reference = InferenceReference(spec: network.spec, tensors: modelTensors(network))
        let pixels = images.array, rowSize = images.rowSize
        return (0..<images.rowCount).map { r in reference.logits(pixels[r * rowSize..<(r + 1) * rowSize]) }
    }

    /// Compares both networks' logits on `images` with the reference bound.
    private func compare(_ network: Network, _ inference: InferenceNetwork, images: Tensor, labels: [Int32],
                         references: [(exact: [Double], bound: [Double])]? = nil,
                         file: StaticString = #filePath, line: UInt = #line) -> Comparison {
        let classes = network.spec.classes
        let references = references ?? reference(network, images)
        let a = trainingNetworkLogits(network, images), b = inferenceLogits(inference, images)
        XCTAssertEqual(a.count, images.rowCount * classes, file: file, line: line)
        XCTAssertEqual(b.count, a.count, file: file, line: line)
        var result = Comparison()
        for r in 0..<images.rowCount {
            let (exact, bound) = references[r]
            for k in 0..<classes {
                let i = r * classes + k
                // Each is within the bound of the exact value, hence within twice it of the other.
                XCTAssertLessThanOrEqual(abs(Double(b[i]) - exact[k]), bound[k], "inference row \(r) class \(k)", file: file, line: line)
                XCTAssertLessThanOrEqual(abs(Double(a[i]) - exact[k]), bound[k], "training row \(r) class \(k)", file: file, line: line)
                let difference = abs(Double(a[i]) - Double(b[i]))
                result.largestDifference = max(result.largestDifference, difference)
                result.worstRatio = max(result.worstRatio, difference / (2 * bound[k]))
            }
            func argmax(_ v: [Float]) -> Int {
                var best = 0
                for k in 1..<classes where v[r * classes + k] > v[r * classes + best] { best = k }
                return best
            }
            let pa = argmax(a), pb = argmax(b)
            if pa == Int(labels[r]) { result.trainingCorrect += 1 }
            if pb == Int(labels[r]) { result.inferenceCorrect += 1 }
            if pa != pb {
                result.classMismatches += 1
                // A tie within rounding: the exact logits of the two classes lie within their bounds.
                if abs(exact[pa] - exact[pb]) > bound[pa] + bound[pb] { result.unresolvedMismatches += 1 }
            }
        }
        return result
    }

    /// vgg8b at featMult 1/32 (4 8 M 8 16 M 16 M 16 M) + Linear 32, 28x28x1, 10 classes.
    private func narrowVgg8b(loss: LossKind) -> ModelSpec {
        var spec = ModelSpec()
        spec.kind = .vgg8b
        spec.featMult = 1 / 32
        spec.numHidden = 32
        spec.loss = loss
        spec.nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity)!
        return spec
    }

    /// Random weights (backprop's default init, so the output layer is not zero) and random
    /// BatchNorm state, random images; micro-batches of 7 over a batch of 45 (a short last one);
    /// the inference network's convs under each engine.
    func testLogitsAgreeWithTheTrainingNetworkWithinTheRoundingBound() throws {
        for spec in [narrowVgg8b(loss: .backprop), narrowVgg8b(loss: .predsim)] {
            let ledger = Ledger()
            let network = Network(spec: spec, seed: 5, ledger: ledger)
            var rng = Xoshiro256(seed: 9)
            for (name, t) in Checkpoint.namedTensors(network) where name.contains(".bn.") || name.hasPrefix("output.") {
                let positive = name.hasSuffix("running_var")
                for i in 0..<t.count { t.pointer[i] = positive ? rng.uniform(0.25, 2) : rng.uniform(-0.5, 0.5) }
            }
            let batch = 45
            let images = Tensor([batch] + spec.inputShape, .input, label: "images", ledger: ledger, zeroed: false)
            for i in 0..<images.count { images.pointer[i] = rng.uniform(-1, 2) }
            let labels = (0..<batch).map { _ in Int32(rng.next(below: 10)) }
            let tensors = Dictionary(Checkpoint.namedTensors(network), uniquingKeysWith: { first, _ in first })
            let references = reference(network, images)
            for engine in ConvEngine.available {
                let inference = try InferenceNetwork(spec: spec, parameters: .shared { tensors[$0] }, microBatch: 7,
                                                     engine: engine, ledger: ledger)
                let c = compare(network, inference, images: images, labels: labels, references: references)
                print("inference (\(engine)) vs training network (\(spec.loss.rawValue)): largest logit difference \(c.largestDifference), \(String(format: "%.2e", c.worstRatio)) of the bound; \(c.classMismatches) class mismatches")
                XCTAssertLessThanOrEqual(c.worstRatio, 1)
                XCTAssertEqual(c.unresolvedMismatches, 0)
                let trainingCorrect = labels.withUnsafeBufferPointer { network.evaluate(images: images, labels: $0.baseAddress!) }
                let inferenceCorrect = labels.withUnsafeBufferPointer { inference.evaluate(images: images, labels: $0.baseAddress!) }
                XCTAssertEqual(trainingCorrect, c.trainingCorrect)
                XCTAssertEqual(inferenceCorrect, c.inferenceCorrect)
                if c.classMismatches == 0 { XCTAssertEqual(inferenceCorrect, trainingCorrect) }
            }
        }
    }

    /// A narrow vgg8b trained for one epoch (16 steps) on a real Fashion-MNIST slice: the test pass inside
    /// `train` (now the inference network over the trainer's own tensors) gives the error the
    /// training network's `evaluate` gives, batch by batch, with every logit within the bound and
    /// no class mismatch beyond ties within rounding; it frees everything it allocated.
    func testTrainersTestPassMatchesTheTrainingNetworkOnRealData() throws {
        try RequiredDataset.fashionMNIST.require()
        let directory = FashionMNISTSlice.temporaryDirectory("inference")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FashionMNISTSlice.make(in: directory, train: 512, test: 160)
        var c = TrainingConfig()
        c.data = directory + "/fashion-mnist"
        c.run = directory + "/run"
        // Backprop: its output layer starts from the default init and learns within a few steps
        // (a local run's starts at zero, so after 16 steps every logit would still be ~ its bias).
        c.model = narrowVgg8b(loss: .backprop)
        c.model.dropout = 0
        c.augment = AugmentRecipe.none
        c.epochs = 1
        c.batchSize = 32
        c.lr = 5e-3
        c.milestones = []
        c.checkpointEvery = 0
        c.threads = 1
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in })
        try trainer.run()

        let live = trainer.ledger.current()
        let inferenceError = try trainer.evaluate(split: "test")
        XCTAssertEqual(trainer.ledger.current(), live, "the test pass left bytes booked")

        // The previous path: the training network's evaluate, batch by batch, on the same loader.
        let dataset = try ShardDataset(directory: c.data)
        let source = try dataset.split("test")
        var loaderConfig = Trainer.loaderConfig(c, training: false)
        loaderConfig.batchSize = 64
        let loader = try BatchLoader(source: source, config: loaderConfig, ledger: trainer.ledger)
        loader.startEpoch(0)
        let inference = try Evaluator.inferenceNetwork(sharing: trainer.network, microBatch: 24)
        var seen = 0, trainingCorrect = 0, mismatches = 0, worst = 0.0
        while let batch = try loader.nextBatch() {
            let images = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width])
            trainingCorrect += trainer.network.evaluate(images: images, labels: batch.labels.pointer)
            let labels = Array(UnsafeBufferPointer(start: batch.labels.pointer, count: batch.count))
            let r = compare(trainer.network, inference, images: images, labels: labels)
            XCTAssertEqual(r.unresolvedMismatches, 0)
            mismatches += r.classMismatches
            worst = max(worst, r.worstRatio)
            seen += batch.count
        }
        XCTAssertEqual(seen, 160)
        print("real slice: \(mismatches) class mismatches in \(seen) test images; largest logit difference \(String(format: "%.2e", worst)) of the bound")
        XCTAssertLessThanOrEqual(worst, 1)
        let trainingError = 100 * Double(seen - trainingCorrect) / Double(seen)
        if mismatches == 0 { XCTAssertEqual(inferenceError, trainingError) }
        XCTAssertLessThan(trainingError, 90, "the model did not train")
    }

    func testEvalOfACheckpointLackingATensorNamesIt() throws {
        let directory = FashionMNISTSlice.temporaryDirectory("inference-ckpt")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let network = Network(spec: narrowVgg8b(loss: .predsim), seed: 1, ledger: Ledger())
        let path = directory + "/full.safetensors"
        try Checkpoint.save(network: network, state: TrainerState(cursor: LoaderCursor(fingerprint: "none", seed: 1, epoch: 0, recordsConsumed: 0,
                                                                                         shuffle: false, poolBlocks: 1)),
                            to: path)
        // Loads unchanged: the same tensors as the training network's, booked as weights only.
        let ledger = Ledger()
        let inference = try Checkpoint.inferenceNetwork(from: path, ledger: ledger)
        XCTAssertEqual(inference.spec, network.spec)
        XCTAssertEqual(ledger.current().bytes(.optimizerState), 0)
        XCTAssertEqual(ledger.current().bytes(.headWeights), 0)

        let file = try SafeTensors.read(path)
        let kept = file.tensors.filter { $0.name != "blocks.3.bn.running_mean" }
        let entries = try kept.map { info in
            SafeTensorsEntry(name: info.name, dtype: info.dtype, shape: info.shape, bytes: try file.withBytes(info.name) { Array($0) })
        }
        let lacking = directory + "/lacking.safetensors"
        try SafeTensors.write(entries, metadata: file.metadata, to: lacking)
        XCTAssertThrowsError(try Checkpoint.inferenceNetwork(from: lacking, ledger: Ledger())) { error in
            XCTAssertEqual(error as? TrainingError, .checkpoint(path: lacking, problem: "lacks tensor blocks.3.bn.running_mean"))
        }
    }
}
