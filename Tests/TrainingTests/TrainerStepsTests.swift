import Foundation
import Layers
import MemoryLedger
import Shards
import XCTest
@testable import Training

/// The library entry point: `Trainer.run(onStep:)` reports every step, in order, and the
/// losses it reports fall on learnable data; `memorySummary()` reads the trainer's own ledger.
final class TrainerStepsTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "layerwise-steps-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // 6x6 images of 3 classes: class c is bright in band c of rows, over seeded noise.
        var seed: UInt64 = 12345
        func next(_ range: ClosedRange<UInt8>) -> UInt8 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return range.lowerBound + UInt8(Int(seed >> 33) % (Int(range.upperBound - range.lowerBound) + 1))
        }
        for (split, count) in [("train", 300), ("test", 90)] {
            var images = LabeledImages(height: 6, width: 6, classCount: 3)
            for i in 0..<count {
                let label = i % 3
                images.append(pixels: (0..<36).map { p in p / 12 == label ? next(100...255) : next(0...130) }, label: label)
            }
            try images.write(to: directory + "/data", split: split)
        }
    }

    override func tearDown() {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }

    func testOnStepIsCalledOncePerStepInOrderAndTheLossFalls() throws {
        var config = TrainingConfig(model: .mlp(layers: 2, hidden: 32, loss: .predsim), data: directory + "/data", run: directory + "/run")
        config.epochs = 4
        config.batchSize = 32
        config.milestones = []
        config.lr = 2e-3
        config.threads = 1
        let ledger = Ledger()
        let trainer = try Trainer(config: config, ledger: ledger, showProgress: false, log: { _ in })
        var steps: [TrainingStep] = []
        let epochs = try trainer.run { steps.append($0) }

        let perEpoch = (300 + 31) / 32  // 10: nine batches of 32 and one of 12
        XCTAssertEqual(epochs.count, 4)
        XCTAssertEqual(steps.count, 4 * perEpoch)
        XCTAssertEqual(steps.map(\.step), Array(1...(4 * perEpoch)))
        XCTAssertEqual(steps.map(\.epoch), (1...4).flatMap { Array(repeating: $0, count: perEpoch) })
        XCTAssertEqual(steps.map(\.stepInEpoch), Array((1...4).map { _ in Array(1...perEpoch) }.joined()))
        XCTAssertTrue(steps.allSatisfy { $0.stepsInEpoch == perEpoch && $0.learningRate == 2e-3 })
        XCTAssertEqual(steps.prefix(perEpoch).map(\.examples).reduce(0, +), 300)
        XCTAssertEqual(steps[perEpoch - 1].examples, 12)
        XCTAssertTrue(steps.allSatisfy { $0.blockLosses.count == 2 && $0.blockLosses.allSatisfy(\.isFinite) })
        // The step reports agree with the epoch's metrics: its train loss is their weighted mean.
        let first = steps.prefix(perEpoch)
        let mean = first.map { Double($0.loss) * Double($0.examples) }.reduce(0, +) / 300
        XCTAssertEqual(mean, epochs[0].trainLoss, accuracy: 1e-5)
        XCTAssertEqual(first.map { $0.examples - $0.correct }.reduce(0, +), Int((epochs[0].trainError * 3).rounded()))

        // Learning shows: every block's local loss and the output loss fall from the first epoch to the last.
        func epochMean(_ epoch: Int, _ value: (TrainingStep) -> Float) -> Double {
            let s = steps.filter { $0.epoch == epoch }
            return s.map { Double(value($0)) * Double($0.examples) }.reduce(0, +) / Double(s.map(\.examples).reduce(0, +))
        }
        for block in 0..<2 {
            XCTAssertLessThan(epochMean(4, { $0.blockLosses[block] }), 0.8 * epochMean(1, { $0.blockLosses[block] }), "block \(block)")
        }
        XCTAssertLessThan(epochMean(4, \.loss), epochMean(1, \.loss))
        XCTAssertLessThan(try XCTUnwrap(epochs.last?.testError), 20, "chance is 66.7%")

        // The summary reads the trainer's ledger: the same peak, the weights among its categories.
        let memory = trainer.memorySummary()
        XCTAssertEqual(memory.peak, ledger.peak())
        XCTAssertGreaterThan(memory.peak.bytes(.weights), 0)
        XCTAssertGreaterThan(memory.peak.bytes(.headWeights), 0)
        XCTAssertEqual(memory.peakCategories.map(\.bytes).reduce(0, +), memory.peak.total)
        XCTAssertTrue(memory.description.hasPrefix("ledger peak "), memory.description)
        XCTAssertTrue(memory.description.contains("\n  weights "), memory.description)
    }

    func testOnStepIsNotKeptAfterTheRun() throws {
        var config = TrainingConfig(model: .mlp(layers: 1, hidden: 8, loss: .backprop), data: directory + "/data", run: directory + "/run")
        config.epochs = 1
        config.batchSize = 100
        config.threads = 1
        let trainer = try Trainer(config: config, ledger: Ledger(), showProgress: false, log: { _ in })
        var calls = 0
        try trainer.run { step in
            calls += 1
            XCTAssertTrue(step.blockLosses.isEmpty, "backprop has no local losses")
        }
        XCTAssertEqual(calls, 3)
        XCTAssertNil(trainer.stepObserver)
    }

    func testRecipesFollowTheLossAsTheCommandLineDoes() {
        let pred = ModelSpec.mlp(layers: 2, hidden: 64, loss: .pred)
        XCTAssertEqual(pred.nonlinearity, .relu)
        XCTAssertEqual(pred.numLayers, 2)
        XCTAssertEqual(pred.numHidden, 64)
        let bpf = ModelSpec.mlp(loss: .predsimBpf)
        XCTAssertEqual(bpf.beta, 0.01)
        XCTAssertEqual(bpf.nonlinearity, .leakyRelu)
        XCTAssertEqual(ModelSpec.mlp(), ModelSpec(), "the default recipe is the paper's mlp")
        let vgg = ModelSpec.vgg(.vgg8b, featMult: 0.5, loss: .sim)
        XCTAssertEqual(vgg.kind, .vgg8b)
        XCTAssertEqual(vgg.dropout, 0.1)
        XCTAssertEqual(vgg.featMult, 0.5)
    }
}
