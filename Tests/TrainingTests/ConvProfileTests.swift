import Foundation
import Layers
import MemoryLedger
import Reports
import Tensors
import XCTest
@testable import Training

/// `layerwise profile` for conv models, without the planner: a narrow vgg8b runs two steps in
/// each mode; the rows are measured (no W_k), local keeps only each block's hand-off after its
/// update, and local's activation peak is below backprop's. Also the one-mode report that
/// `train --memory-report` writes.
final class ConvProfileTests: XCTestCase {
    /// vgg8b at feat-mult 1/64: conv widths 2, 4, 4, 8, 8, 8 on 28x28, classifier block of 16.
    func request(batch: Int = 8) -> ProfileRequest {
        var r = ProfileRequest()
        r.model.kind = .vgg8b
        r.model.featMult = 1.0 / 64
        r.model.numHidden = 16
        r.model.dimInDecoder = 64
        r.model.dropout = 0.1
        r.model.loss = .predsim
        r.batchSize = batch
        r.steps = 2  // the planner books oneDNN's workspace at its largest; a Winograd engine makes its largest primitive late in step 1
        r.model.winograd = false  // the budget tests below are about chunks; Winograd's part is MemoryBudgetTests'
        r.threads = 1
        return r
    }

    func testConvProfileRowsAreMeasuredAndOnlyTheHandOffSurvivesEachLocalBlock() throws {
        let r = request()
        let plans = MemoryProfileRun(request: r, executable: "/bin/false").plans
        XCTAssertEqual(plans.count, 2)
        let local = try ModeProfiler.run(r, mode: "local")
        let backprop = try ModeProfiler.run(r, mode: "backprop")
        let blocks = r.model.convBlocks
        XCTAssertEqual(local.layers.count, blocks.count + 2)  // conv blocks, classifier block, output
        XCTAssertEqual(backprop.layers.count, blocks.count + 2)
        for (k, block) in blocks.enumerated() {
            let row = local.layers[k]
            XCTAssertTrue(row.name.hasPrefix("conv \(block.inChannels)->\(block.outChannels) "), row.name)
            XCTAssertEqual(row.workingSetBytes, plans[0].layers[k].workingSetBytes)
            XCTAssertGreaterThan(row.headParams, 0)
            XCTAssertGreaterThan(row.optimizerStateBytes, 0)
            let side = block.poolAfter ? block.height / 2 : block.height
            let handOff = r.batchSize * block.outChannels * side * side * MemoryLayout<Float>.stride
            XCTAssertEqual(row.survivingBytes, handOff, "block \(k): only its hand-off survives its update")
            XCTAssertGreaterThan(row.measuredPeakBytes ?? 0, handOff)
            XCTAssertNil(backprop.layers[k].survivingBytes)
            XCTAssertEqual(backprop.layers[k].headParams, 0)
        }
        // The parameter column adds up to the paper's #params.
        XCTAssertEqual(backprop.layers.map(\.params).reduce(0, +), r.model.parameterCount)
        XCTAssertLessThan(local.activationPeak, backprop.activationPeak)
        let comparison = MemoryComparison(local: local, backprop: backprop)
        let summary = TerminalSummary(comparison).render()
        XCTAssertTrue(summary.contains("vgg8b x0.015625 + 16"), summary)
        // The planner predicted both modes' ledger peaks (without the loader) to the byte.
        let checks = MemoryProfileRun(request: r, executable: "/bin/false").plannerCheck(comparison)
        XCTAssertEqual(checks.count, 2)
        for line in checks { XCTAssertTrue(line.hasSuffix("(exact)"), line) }
    }

    /// What is live when each conv block's update begins: activations, activation gradients
    /// and loss temporaries, beside the bytes of the block's input hand-off and h.
    private func liveAtConvUpdates(retainActivations: Bool) -> [(layer: Int, activations: Int, activationGrads: Int, lossTemp: Int, inputAndH: Int)] {
        let r = request()
        let ledger = Ledger()
        let network = Network(spec: r.spec(mode: "local"), seed: 2, optimizer: r.optimizer, ledger: ledger)
        for block in network.convBlocks { block.retainActivationsForTesting = retainActivations }
        defer { network.convBlocks.forEach { $0.releaseRetained() } }
        let images = Tensor([r.batchSize] + r.model.inputShape, .input, label: "batch", ledger: ledger)
        let labels = (0..<r.batchSize).map { Int32($0 % 10) }
        ledger.clearEvents()
        _ = labels.withUnsafeBufferPointer { network.trainStep(images: images, labels: $0.baseAddress!, lr: 1e-3, step: 0) }
        let events = ledger.history().events
        let timeline = Timeline(events: events, final: ledger.current())
        var rows: [(layer: Int, activations: Int, activationGrads: Int, lossTemp: Int, inputAndH: Int)] = []
        for (i, event) in events.enumerated() where event.kind == .marker && event.phase == .update && event.layer < network.convBlocks.count {
            let block = network.convBlocks[event.layer]
            let hBytes = r.batchSize * block.geometry.outChannels * block.geometry.outSpatial * MemoryLayout<Float>.stride
            let inputBytes = event.layer == 0 ? 0 : r.batchSize * network.convBlocks[event.layer - 1].outputShape.reduce(1, *) * MemoryLayout<Float>.stride
            rows.append((event.layer, timeline.categories[.activations][i], timeline.categories[.activationGrads][i],
                         timeline.categories[.lossTemp][i], inputBytes + hBytes))
        }
        XCTAssertEqual(rows.count, network.convBlocks.count)
        return rows
    }

    /// Free at last use in a conv block: when its update begins, x-hat, invStd, dh and every
    /// head temporary are gone; only the block's input hand-off and h are live.
    func testConvBlockUpdateSeesOnlyItsInputAndH() {
        for row in liveAtConvUpdates(retainActivations: false) {
            XCTAssertEqual(row.activationGrads, 0, "block \(row.layer)")
            XCTAssertEqual(row.lossTemp, 0, "block \(row.layer)")
            XCTAssertEqual(row.activations, row.inputAndH, "block \(row.layer)")
        }
    }

    /// Negative control of the check above: conv blocks that keep x-hat and invStd past their
    /// backward show more than their input and h at the update.
    func testConvNegativeControlKeepingActivationsFailsTheUpdateCheck() {
        for row in liveAtConvUpdates(retainActivations: true) {
            XCTAssertGreaterThan(row.activations, row.inputAndH, "block \(row.layer)")
        }
    }

    func testBudgetOnAConvModelPicksTheLargestChunkThatFitsOrRefuses() throws {
        var run = MemoryProfileRun(request: request(), executable: "/bin/false")
        let spec = run.request.spec(mode: "local"), batch = run.request.batchSize
        let whole = MemoryPlanner.plan(spec, batchSize: batch)
        // Room for whole batches: no chunking.
        XCTAssertNil(try run.applyBudget(whole.peak + ProcessOverhead.profile.bytes).plan.chunk)
        // One byte less: the largest chunk (halving from the batch) whose peak fits.
        let choice = try run.applyBudget(whole.peak + ProcessOverhead.profile.bytes - 1)
        let chunk = try XCTUnwrap(choice.plan.chunk)
        XCTAssertEqual(run.request.chunk, chunk)
        XCTAssertLessThanOrEqual(choice.total, whole.peak + ProcessOverhead.profile.bytes - 1)
        XCTAssertEqual(choice.plan.peak, MemoryPlanner.plan(spec, batchSize: batch, chunk: chunk).peak)
        if chunk < batch / 2 {
            let larger = MemoryPlanner.plan(spec, batchSize: batch, chunk: 2 * chunk)
            XCTAssertGreaterThan(larger.peak + ProcessOverhead.profile.bytes, whole.peak + ProcessOverhead.profile.bytes - 1)
        }
        // Below the smallest achievable peak: refused, naming what dominates.
        run.request.chunk = nil
        XCTAssertThrowsError(try run.applyBudget(1 << 10)) { error in
            XCTAssertTrue("\(error)".contains("no chunk size goes below"), "\(error)")
            XCTAssertTrue("\(error)".contains("Adam state"), "\(error)")
        }
    }

    func testSingleModeReportWritesEveryFileWithOneMode() throws {
        let profile = try ModeProfiler.run(request(batch: 4), mode: "local")
        let comparison = MemoryComparison(single: profile)
        XCTAssertEqual(comparison.modes.count, 1)
        XCTAssertNil(comparison.headline.peakRatio)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("single-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ReportWriter(directory: directory).write(comparison)
        let summary = try String(contentsOfFile: directory + "/summary.txt", encoding: .utf8)
        XCTAssertTrue(summary.contains("One mode only"), summary)
        XCTAssertFalse(summary.contains("Per layer, backprop"), summary)
        let document = try MemoryDocument.decode(Data(contentsOf: URL(fileURLWithPath: directory + "/memory.json")))
        XCTAssertEqual(document.comparison.modes.count, 1)
        let html = try String(contentsOfFile: directory + "/memory.html", encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 1, "one timeline chart")
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/trace.json"))
    }
}
