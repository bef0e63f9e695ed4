import DatasetTestSupport
import Foundation
import Layers
import MemoryLedger
import Reports
import Tensors
import XCTest
@testable import Training
import Shards

/// A killed run resumes exactly; a diverging run stops with the layer and step named and its
/// checkpoint intact; eval rejects checkpoints of other models and damaged files.
final class ResumeAndFailureTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        try RequiredDataset.fashionMNIST.require()
        directory = FashionMNISTSlice.temporaryDirectory("resume")
        try FashionMNISTSlice.make(in: directory, train: 700, test: 200)
    }

    override func tearDown() {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }

    func config(_ run: String, loss: LossKind = .predsim) -> TrainingConfig {
        var c = TrainingConfig()
        c.data = directory + "/fashion-mnist"
        c.run = directory + "/" + run
        c.model.loss = loss
        c.model.numLayers = 2
        c.model.numHidden = 32
        c.model.dropout = 0.1
        c.epochs = 3
        c.batchSize = 64
        c.milestones = [2]
        c.checkpointEvery = 3
        c.threads = 1
        return c
    }

    /// With 8-bit and bf16 optimizer state (Adam, and SGD for int8) a killed run resumes to the
    /// bits of the uninterrupted one: codes, scales and the stochastic rounding's counters all
    /// come back from the checkpoint.
    func testKilledRunWithLeanOptimizerStateResumesBitIdentically() throws {
        for (format, kind) in [(OptimizerStateFormat.int8, OptimizerKind.adam), (.bf16, .adam), (.int8, .sgd)] {
            func leanConfig(_ run: String) -> TrainingConfig {
                var c = config(run)
                c.optimizer.stateFormat = format
                c.optimizer.kind = kind
                return c
            }
            let reference = try Trainer(config: leanConfig("ref-\(format)-\(kind)"), ledger: Ledger(), showProgress: false, log: { _ in })
            try reference.run()
            let expected = reference.checkpointArrays(moments: true)
            let run = "killed-\(format)-\(kind)"
            let first = try Trainer(config: leanConfig(run), ledger: Ledger(), showProgress: false, log: { _ in })
            first.killAtGlobalStep = 16
            XCTAssertThrowsError(try first.run()) { XCTAssertTrue($0 is Trainer.Killed, "\($0)") }
            let resumed = try Trainer(config: leanConfig(run), resume: true, ledger: Ledger(), showProgress: false, log: { _ in })
            XCTAssertEqual(resumed.state.globalStep, 14)
            try resumed.run()
            let got = resumed.checkpointArrays(moments: true)
            XCTAssertEqual(got.keys.sorted(), expected.keys.sorted())
            for (name, values) in expected {
                XCTAssertEqual(got[name], values, "\(format) \(kind): \(name) differs after a kill at step 16")
            }
        }
    }

    /// A checkpoint of one state format loads into another: fp32 -> int8 -> fp32 keeps every
    /// moment within the 8-bit code's error (half a code step of its block's scale, in the root
    /// domains: below 1% of the block's largest value here) and the weights exactly; int8 and
    /// bf16 written and read back in their own format are bit-identical.
    func testCheckpointsConvertBetweenOptimizerStateFormats() throws {
        let fp32Run = try Trainer(config: config("convert-fp32"), ledger: Ledger(), showProgress: false, log: { _ in })
        fp32Run.killAtGlobalStep = 5
        XCTAssertThrowsError(try fp32Run.run())
        let path = directory + "/convert-fp32/checkpoint.safetensors"
        let ledger = Ledger()
        var settings = OptimizerSettings()
        let original = Network(spec: fp32Run.network.spec, seed: 1, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: path, into: original)
        settings.stateFormat = .int8
        let lean = Network(spec: fp32Run.network.spec, seed: 2, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: path, into: lean)
        let pairs = zip(Checkpoint.namedMoments(original), Checkpoint.namedMoments(lean))
        for ((name, a), (_, b)) in pairs {
            XCTAssertEqual(b.format, .int8)
            let x = a.values(), y = b.values()
            for start in stride(from: 0, to: x.count, by: ElementwiseKernels.quantizationBlock) {
                let range = start..<min(x.count, start + ElementwiseKernels.quantizationBlock)
                let scale = range.map { abs(x[$0]) }.max()!
                for i in range { XCTAssertEqual(y[i], x[i], accuracy: 0.01 * scale, "\(name)[\(i)]") }
            }
        }
        XCTAssertTrue(pairs.contains { $0.0.1.values() != $0.1.1.values() }, "int8 really quantised")
        // int8 written, read back as int8: the same bits; read as fp32: the dequantised values.
        let state = try Checkpoint.load(from: path, into: lean)
        let leanPath = directory + "/lean.safetensors"
        try Checkpoint.save(network: lean, state: state, to: leanPath)
        let file = try SafeTensors.read(leanPath)
        XCTAssertEqual(try file.info("optimizer.output.weight.m.codes").dtype, .u8)
        XCTAssertEqual(try file.info("optimizer.output.weight.v.scales").dtype, .f32)
        let again = Network(spec: lean.spec, seed: 3, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: leanPath, into: again)
        settings.stateFormat = .fp32
        let back = Network(spec: lean.spec, seed: 4, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: leanPath, into: back)
        for (((name, a), (_, b)), (_, c)) in zip(zip(Checkpoint.namedMoments(lean), Checkpoint.namedMoments(again)), Checkpoint.namedMoments(back)) {
            guard case .int8(let ac, let asc) = a.storage, case .int8(let bc, let bsc) = b.storage else { return XCTFail(name) }
            XCTAssertEqual(Array(ac.buffer), Array(bc.buffer), name)
            XCTAssertEqual(Array(asc.buffer), Array(bsc.buffer), name)
            XCTAssertEqual(c.values(), a.values(), name)
        }
        settings.stateFormat = .bf16
        let half = Network(spec: lean.spec, seed: 5, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: path, into: half)
        let halfPath = directory + "/half.safetensors"
        try Checkpoint.save(network: half, state: state, to: halfPath)
        XCTAssertEqual(try SafeTensors.read(halfPath).info("optimizer.output.weight.m").dtype, .bf16)
        let halfAgain = Network(spec: lean.spec, seed: 6, optimizer: settings, ledger: ledger)
        try Checkpoint.load(from: halfPath, into: halfAgain)
        for ((name, a), (_, b)) in zip(Checkpoint.namedMoments(half), Checkpoint.namedMoments(halfAgain)) {
            XCTAssertEqual(a.values(), b.values(), name)
        }
    }

    /// 700 records at batch 64 is 11 steps per epoch; checkpoints every 3 steps. Kills at steps
    /// inside an epoch (after and before a checkpoint), and at an epoch boundary.
    func testKilledRunResumedEndsBitIdenticalToAnUninterruptedRun() throws {
        for loss in [LossKind.predsim, .backprop] {
            let reference = try Trainer(config: config("ref-\(loss)", loss: loss), ledger: Ledger(), showProgress: false, log: { _ in })
            try reference.run()
            let expected = reference.checkpointArrays(moments: true)
            // kill step -> the step of the last checkpoint written before it
            for (kill, checkpointed) in [(5, 3), (11, 11), (16, 14)] {
                let run = "killed-\(loss)-\(kill)"
                let first = try Trainer(config: config(run, loss: loss), ledger: Ledger(), showProgress: false, log: { _ in })
                first.killAtGlobalStep = kill
                XCTAssertThrowsError(try first.run()) { XCTAssertTrue($0 is Trainer.Killed, "\($0)") }
                let resumed = try Trainer(config: config(run, loss: loss), resume: true, ledger: Ledger(), showProgress: false, log: { _ in })
                // It really continues from the checkpoint (a restart from scratch would also end
                // with the same weights, since every random draw is seeded).
                XCTAssertEqual(resumed.state.globalStep, checkpointed)
                try resumed.run()
                let got = resumed.checkpointArrays(moments: true)
                XCTAssertEqual(got.keys.sorted(), expected.keys.sorted())
                for (name, values) in expected {
                    XCTAssertEqual(got[name], values, "\(loss): \(name) differs after a kill at step \(kill)")
                }
                let epochs = try RunFolder(path: directory + "/" + run).metrics().map(\.epoch)
                XCTAssertEqual(epochs, [1, 2, 3])
            }
        }
    }

    func testResumeWithOtherSettingsIsRefused() throws {
        let first = try Trainer(config: config("other"), ledger: Ledger(), showProgress: false, log: { _ in })
        first.killAtGlobalStep = 4
        XCTAssertThrowsError(try first.run()) { XCTAssertTrue($0 is Trainer.Killed, "\($0)") }
        var changed = config("other")
        changed.lr = 0.1
        XCTAssertThrowsError(try Trainer(config: changed, resume: true, ledger: Ledger(), showProgress: false)) { error in
            XCTAssertTrue("\(error)".contains("another configuration"), "\(error)")
        }
    }

    func testNonFiniteLossStopsWithLayerAndStepNamedAndCheckpointIntact() throws {
        var c = config("nan", loss: .backprop)
        c.lr = 1e30
        c.optimizer.kind = .sgd
        c.checkpointEvery = 1
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in })
        XCTAssertThrowsError(try trainer.run()) { error in
            guard case let TrainingError.nonFiniteLoss(layer, step, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(layer, "output layer")
            XCTAssertGreaterThan(step, 0)
            XCTAssertTrue("\(error)".contains("step \(step)"))
        }
        // The last checkpoint still loads.
        let spec = try Checkpoint.spec(at: trainer.runFolder.checkpointPath)
        XCTAssertEqual(spec.loss, .backprop)
    }

    func testEvalRejectsAnotherModelsCheckpointAndADamagedFile() throws {
        var c = config("eval")
        c.epochs = 1
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in })
        try trainer.run()
        let ok = try Evaluation.run(runFolder: c.run, checkpoint: nil, data: nil, split: "test")
        XCTAssertEqual(ok.records, 200)
        XCTAssertLessThan(ok.error, 90)

        // Another model: the same file loaded into a wider network.
        var other = c.model
        other.numHidden = 64
        let network = Network(spec: try Trainer.resolvedSpec(other, schema: try ShardsSchema.of(c.data)), seed: 1, ledger: Ledger())
        XCTAssertThrowsError(try Checkpoint.load(from: trainer.runFolder.checkpointPath, into: network)) { error in
            XCTAssertTrue("\(error)".contains("another model"), "\(error)")
        }

        // A damaged file: truncated in the middle of the tensor data.
        let damaged = directory + "/damaged.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: trainer.runFolder.checkpointPath))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: damaged))
        XCTAssertThrowsError(try Evaluation.run(runFolder: nil, checkpoint: damaged, data: c.data, split: "test")) { error in
            XCTAssertTrue("\(error)".contains("damaged"), "\(error)")
            XCTAssertTrue("\(error)".contains(damaged), "\(error)")
        }
    }
}

enum ShardsSchema {
    static func of(_ directory: String) throws -> RecordSchema { try ShardDataset(directory: directory).schema }
}

/// `layerwise train --memory-report DIR`: the reports of the first steps of a real run.
final class TrainMemoryReportTests: XCTestCase {
    func testTrainWritesAOneModeMemoryReportOfItsFirstSteps() throws {
        try RequiredDataset.fashionMNIST.require()
        let directory = FashionMNISTSlice.temporaryDirectory("memreport")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FashionMNISTSlice.make(in: directory, train: 300, test: 100)
        var c = TrainingConfig()
        c.data = directory + "/fashion-mnist"
        c.run = directory + "/run"
        c.model.numLayers = 2
        c.model.numHidden = 32
        c.epochs = 1
        c.batchSize = 64
        c.threads = 1
        c.memoryReport = directory + "/report"
        var lines: [String] = []
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        try trainer.run()
        XCTAssertTrue(lines.contains { $0.contains("memory report of the first \(Trainer.memoryReportSteps) steps") }, "\(lines)")
        for name in ReportWriter.fileNames {
            XCTAssertTrue(FileManager.default.fileExists(atPath: c.memoryReport! + "/" + name), name)
        }
        let document = try MemoryDocument.decode(Data(contentsOf: URL(fileURLWithPath: c.memoryReport! + "/memory.json")))
        let run = document.comparison.local
        XCTAssertEqual(document.comparison.modes.count, 1)
        XCTAssertEqual(run.steps, Trainer.memoryReportSteps)
        XCTAssertEqual(run.layers.count, 3)
        // The mlp is planned: every layer's measured window equals the planner's W_k.
        for row in run.layers { XCTAssertEqual(row.measuredPeakBytes, row.workingSetBytes, row.name) }
        XCTAssertGreaterThan(run.activationPeak, 0)
    }
}
