import DatasetTestSupport
import Foundation
import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest
@testable import Training

/// The greedy schedule in training runs: rounds in epochs, the learning rate inside a round,
/// frozen blocks that stay frozen, and kills inside a round and at a round boundary resumed
/// bit-identically.
final class GreedyTrainingTests: XCTestCase {
    var directory = ""

    override func tearDown() {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }

    func testRoundsSplitTheEpochsWithTheRemainderToTheLastRounds() {
        var c = TrainingConfig()
        c.schedule = .greedy
        c.epochs = 7
        XCTAssertEqual(c.roundLengths(blocks: 3), [2, 2, 3])
        c.epochs = 200
        XCTAssertEqual(c.roundLengths(blocks: 3), [66, 67, 67])
        XCTAssertEqual(c.runEpochs(blocks: 3), 200)
        XCTAssertEqual(c.roundPosition(epoch: 65, blocks: 3).round, 0)
        XCTAssertEqual(c.roundPosition(epoch: 66, blocks: 3).round, 1)
        XCTAssertEqual(c.roundPosition(epoch: 133, blocks: 3).round, 2)
        XCTAssertEqual(c.roundPosition(epoch: 133, blocks: 3).epochInRound, 0)
        c.epochsPerBlock = 4
        XCTAssertEqual(c.roundLengths(blocks: 3), [4, 4, 4])
        XCTAssertEqual(c.runEpochs(blocks: 3), 12)
        XCTAssertTrue(c.scheduleLine(blocks: 3).hasPrefix("schedule greedy: 3 rounds of 4, 4, 4 epochs"))
    }

    func testMilestonesApplyToEachRoundScaledToItsLength() {
        var c = TrainingConfig()
        c.schedule = .greedy
        c.epochs = 200
        c.milestones = [100, 150]
        c.lrDecay = 0.25
        // Round 0 has 66 epochs: milestone 100/200 at its epoch 33, 150/200 at 49.5 -> 50.
        XCTAssertEqual(c.learningRate(epoch: 32, blocks: 3), 5e-4)
        XCTAssertEqual(c.learningRate(epoch: 33, blocks: 3), 5e-4 * 0.25)
        XCTAssertEqual(c.learningRate(epoch: 49, blocks: 3), 5e-4 * 0.25)
        XCTAssertEqual(c.learningRate(epoch: 50, blocks: 3), 5e-4 * 0.25 * 0.25)
        // Round 1 starts again at the full rate.
        XCTAssertEqual(c.learningRate(epoch: 66, blocks: 3), 5e-4)
        XCTAssertEqual(c.learningRate(epoch: 66 + 34, blocks: 3), 5e-4 * 0.25)  // 67 epochs: 33.5 -> 34
        XCTAssertEqual(c.learningRate(epoch: 66 + 33, blocks: 3), 5e-4)
        c.schedule = nil
        XCTAssertEqual(c.learningRate(epoch: 100, blocks: 3), 5e-4 * 0.25)
        XCTAssertEqual(c.learningRate(epoch: 66, blocks: 3), 5e-4)
    }

    /// A block waiting for its round books no map weight, and `wake()` draws the values an eager
    /// block of the same generator got at construction; the generator moves past them either way.
    func testDormantBlockBooksNoWeightAndWakesWithTheEagerDraws() {
        var eagerDraws = Xoshiro256(seed: 9)
        var dormantDraws = eagerDraws
        let eagerLedger = Ledger(), dormantLedger = Ledger()
        let eager = HiddenBlock(index: 1, inFeatures: 24, outFeatures: 16, classes: 10, loss: .predsim, beta: 0.99,
                                nonlinearity: .leakyRelu, dropout: 0, rng: &eagerDraws, ledger: eagerLedger, withHeads: false)
        let dormant = HiddenBlock(index: 1, inFeatures: 24, outFeatures: 16, classes: 10, loss: .predsim, beta: 0.99,
                                  nonlinearity: .leakyRelu, dropout: 0, rng: &dormantDraws, ledger: dormantLedger,
                                  withHeads: false, dormant: true)
        XCTAssertEqual(eagerDraws.next(), dormantDraws.next(), "the generator after a dormant block differs")
        XCTAssertTrue(dormant.isDormant)
        XCTAssertEqual(eagerLedger.current().bytes(.weights) - dormantLedger.current().bytes(.weights), 4 * 24 * 16)
        dormant.wake()
        XCTAssertFalse(dormant.isDormant)
        XCTAssertEqual(dormantLedger.current().bytes(.weights), eagerLedger.current().bytes(.weights))
        XCTAssertEqual(dormant.weight.value.array, eager.weight.value.array)
        XCTAssertEqual(dormant.bias.value.array, eager.bias.value.array)
        XCTAssertNotEqual(Set(eager.weight.value.array).count, 1, "the eager weight was not drawn")
    }

    /// A frozen block keeps its weights and running statistics while later rounds train, has no
    /// heads or optimizer state, and block k's heads come from (seed, k) alone.
    func testFrozenBlocksStayFrozenAndHeadsDependOnlyOnSeedAndBlock() {
        let spec = ProofModel.spec(.predsim)
        let network = Network(spec: spec, seed: 5, ledger: Ledger(), schedule: .greedy)
        let batch = Tensor([ProofModel.batch] + spec.inputShape, .input, label: "batch", ledger: network.ledger)
        for i in 0..<batch.count { batch.pointer[i] = Float(i % 7) - 3 }
        network.beginRound(0)
        _ = ProofModel.peak(network, batch)
        let block0 = network.blocks[0]
        let before = block0.parameters.map(\.value.array) + [block0.runningMean.array, block0.runningVar.array]
        network.beginRound(1)
        let markers = network.ledger.history().events.filter { $0.kind == .marker && "\($0.label)" == "greedy round" }
        XCTAssertEqual(markers.map(\.layer), [0, 1], "one timeline marker per round, on the training block")
        XCTAssertTrue(block0.isFrozen)
        XCTAssertNil(block0.heads)
        XCTAssertNil(block0.optimizer)
        XCTAssertTrue(block0.parameters.allSatisfy { $0.state.isEmpty })
        let heads1 = network.blocks[1].heads!.parameters.map(\.value.array)
        _ = ProofModel.peak(network, batch, steps: 3)
        let after = block0.parameters.map(\.value.array) + [block0.runningMean.array, block0.runningVar.array]
        XCTAssertEqual(before, after, "a frozen block changed")
        XCTAssertNil(network.blocks[2].heads, "a later block has heads before its round")

        // Another network of the same seed that goes straight to round 1 draws the same heads.
        let other = Network(spec: spec, seed: 5, ledger: Ledger(), schedule: .greedy)
        other.beginRound(1)
        XCTAssertEqual(other.blocks[1].heads!.parameters.map(\.value.array), heads1)
        let third = Network(spec: spec, seed: 6, ledger: Ledger(), schedule: .greedy)
        third.beginRound(1)
        XCTAssertNotEqual(third.blocks[1].heads!.parameters.map(\.value.array), heads1)
    }

    /// The default mlp (3x1024, predsim, batch 128): the greedy run's largest round peaks below
    /// backprop in the ledger, measured (the planner tests check every round byte for byte).
    func testGreedyMLPPeaksBelowBackpropMeasured() {
        var spec = ModelSpec()
        spec.inputShape = [1, 28, 28]
        spec.classes = 10
        let largest = MemoryPlanner.greedyPeakPlan(ShapeTable(spec: spec), batchSize: 128)
        let ledger = Ledger(eventCapacity: 1 << 10)
        let greedy = Network(spec: spec, seed: 1, ledger: ledger, schedule: .greedy)
        greedy.beginRound(largest.round!)
        let greedyPeak = ProofModel.peak(greedy, GreedyPlanTests.images(spec, batch: 128, ledger: ledger)).total
        XCTAssertEqual(greedyPeak, largest.peak)
        var bp = spec
        bp.loss = .backprop
        bp.nonlinearity = .relu
        let bpLedger = Ledger(eventCapacity: 1 << 10)
        let backprop = Network(spec: bp, seed: 1, ledger: bpLedger)
        let backpropPeak = ProofModel.peak(backprop, GreedyPlanTests.images(bp, batch: 128, ledger: bpLedger)).total
        XCTAssertLessThan(greedyPeak, backpropPeak, "greedy \(greedyPeak) vs backprop \(backpropPeak)")
    }

    // MARK: runs on a slice of Fashion-MNIST

    func config(_ run: String) -> TrainingConfig {
        var c = TrainingConfig()
        c.data = directory + "/fashion-mnist"
        c.run = directory + "/" + run
        c.model.loss = .predsim
        c.model.numLayers = 2
        c.model.numHidden = 32
        c.model.dropout = 0.1
        c.schedule = .greedy
        c.epochs = 4  // rounds of 2 and 2 epochs
        c.batchSize = 64
        c.milestones = [2]
        c.checkpointEvery = 3
        c.threads = 1
        return c
    }

    /// 700 records at batch 64 is 11 steps an epoch, checkpoints every 3 steps; round 1 starts
    /// at step 22. Kills inside round 0, at the round boundary (the checkpoint written as round
    /// 1 began) and inside round 1.
    func testGreedyRunKilledInsideARoundAndAtARoundBoundaryResumesBitIdentically() throws {
        try RequiredDataset.fashionMNIST.require()
        directory = FashionMNISTSlice.temporaryDirectory("greedy-resume")
        try FashionMNISTSlice.make(in: directory, train: 700, test: 200)
        var lines: [String] = []
        let reference = try Trainer(config: config("ref"), ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        XCTAssertTrue(lines.first?.hasPrefix("schedule greedy: 2 rounds of 2, 2 epochs") ?? false, "\(lines.first ?? "")")
        XCTAssertEqual(reference.state.round, 0)
        try reference.run()
        XCTAssertEqual(reference.network.round, 1)
        let expected = reference.checkpointArrays(moments: false)
        let metrics = try RunFolder(path: directory + "/ref").metrics()
        XCTAssertEqual(metrics.map(\.epoch), [1, 2, 3, 4])
        XCTAssertEqual(metrics[0].layers.map(\.layer), [0], "round 0 trains block 0 only")
        XCTAssertEqual(metrics[3].layers.map(\.layer), [1])
        XCTAssertEqual(metrics[0].ledgerPeak["frozenWeights"], 0)
        XCTAssertGreaterThan(metrics[3].ledgerPeak["frozenWeights"] ?? 0, 0)
        XCTAssertEqual(metrics.map(\.round), [1, 1, 2, 2])
        XCTAssertEqual(metrics.map(\.outputTrained), [false, false, nil, nil], "the output layer trains in the last round only")
        XCTAssertEqual(metrics.map { $0.testError == nil }, [true, true, false, false], "test error before the last round")

        for (kill, checkpointed, round) in [(5, 3, 0), (22, 22, 1), (27, 25, 1)] {
            let run = "killed-\(kill)"
            let first = try Trainer(config: config(run), ledger: Ledger(), showProgress: false, log: { _ in })
            first.killAtGlobalStep = kill
            XCTAssertThrowsError(try first.run()) { XCTAssertTrue($0 is Trainer.Killed, "\($0)") }
            if round == 0 {
                XCTAssertThrowsError(try Evaluation.run(runFolder: directory + "/" + run, checkpoint: nil, data: nil, split: "test")) {
                    XCTAssertTrue("\($0)".contains("greedy run in round 1 of 2"), "\($0)")
                }
            }
            let resumed = try Trainer(config: config(run), resume: true, ledger: Ledger(), showProgress: false, log: { _ in })
            XCTAssertEqual(resumed.state.globalStep, checkpointed)
            XCTAssertEqual(resumed.state.round, round)
            XCTAssertEqual(resumed.network.round, round)
            try resumed.run()
            let got = resumed.checkpointArrays(moments: false)
            XCTAssertEqual(got.keys.sorted(), expected.keys.sorted())
            for (name, values) in expected {
                XCTAssertEqual(got[name], values, "\(name) differs after a kill at step \(kill)")
            }
            XCTAssertEqual(try RunFolder(path: directory + "/" + run).metrics().map(\.epoch), [1, 2, 3, 4])
        }
    }
}
