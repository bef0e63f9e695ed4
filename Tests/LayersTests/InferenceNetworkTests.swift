import Layers
import MemoryLedger
import Randomness
import Tensors
import XCTest

/// The inference-only network's memory, proved from the ledger: only the model's weights are
/// booked (no heads, gradients or optimizer state), and its activation peak is what the shapes
/// predict for one micro-batch, whatever the batch size.
final class InferenceNetworkTests: XCTestCase {
    /// vgg8b at featMult 1/16 (8 16 M 16 32 M 32 M 32 M) + Linear 64, 28x28x1, 10 classes.
    private func narrowVgg8b() -> ModelSpec {
        var spec = ModelSpec()
        spec.kind = .vgg8b
        spec.featMult = 1 / 16
        spec.numHidden = 64
        spec.nonlinearity = .leakyRelu
        return spec
    }

    private func mlp() -> ModelSpec {
        var spec = ModelSpec()
        spec.numLayers = 3
        spec.numHidden = 48
        return spec
    }

    /// Fills every tensor with seeded values; running variances stay positive.
    private func randomParameters(seed: UInt64) -> InferenceNetwork.ParameterSource {
        var rng = Xoshiro256(seed: seed)
        return .load { name, tensor in
            let p = tensor.pointer
            let positive = name.hasSuffix("running_var")
            for i in 0..<tensor.count { p[i] = positive ? rng.uniform(0.5, 2) : rng.uniform(-0.3, 0.3) }
        }
    }

    private func images(_ spec: ModelSpec, batch: Int, ledger: Ledger, seed: UInt64 = 7) -> Tensor {
        let x = Tensor([batch] + spec.inputShape, .input, label: "images", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: seed)
        for i in 0..<x.count { x.pointer[i] = rng.uniform(-1, 1) }
        return x
    }

    /// The activation peak of one micro-batch of `rows` examples, from the spec's shapes alone:
    /// each layer holds its input and its output while its map runs, then its output and the
    /// pooled hand-off while it pools (its input is freed by then); the first layer's input is
    /// the caller's batch, booked as `input`. Float32: 4 bytes an element.
    private func predictedActivationPeak(_ spec: ModelSpec, rows: Int) -> Int {
        var peak = 0
        var input = 0  // elements of the current layer's input per example, booked as activations
        for b in spec.convBlocks {
            let out = b.outChannels * b.height * b.width
            peak = max(peak, input + out)
            input = out
            if b.poolAfter {
                let pooled = b.outChannels * (b.height / 2) * (b.width / 2)
                peak = max(peak, out + pooled)
                input = pooled
            }
        }
        for _ in 0..<spec.linearBlockCount {
            peak = max(peak, input + spec.numHidden)
            input = spec.numHidden
        }
        peak = max(peak, input + spec.classes)
        return 4 * rows * peak
    }

    func testPredictedPeakOfNarrowVgg8bByHand() {
        // Block 1 (8 -> 16 channels at 28x28): 8 784 + 16 784 = 18,816 floats an example.
        XCTAssertEqual(predictedActivationPeak(narrowVgg8b(), rows: 16), 4 * 16 * 18_816)
    }

    func testActivationPeakIsOneMicroBatchAndDoesNotGrowWithTheBatch() throws {
        for (spec, name) in [(narrowVgg8b(), "vgg8b/16"), (mlp(), "mlp")] {
            for engine in ConvEngine.available where spec.kind != .mlp || engine == .im2col {
                let ledger = Ledger()
                var peaks: [Int: Int] = [:]
                do {
                    let network = try InferenceNetwork(spec: spec, parameters: randomParameters(seed: 3), microBatch: 16,
                                                       engine: engine, ledger: ledger)
                    for batch in [16, 512, 40] {
                        peaks[batch] = try evaluatedActivationPeak(network, batch: batch, ledger: ledger)
                        XCTAssertEqual(peaks[batch], predictedActivationPeak(spec, rows: 16), "\(name) \(engine) batch \(batch)")
                        // Kept for the next batch, and nothing else.
                        XCTAssertEqual(ledger.current().bytes(.activations), predictedActivationPeak(spec, rows: 16))
                    }
                    XCTAssertEqual(network.activationFloatsPerExample * 4 * 16, predictedActivationPeak(spec, rows: 16))
                }
                XCTAssertEqual(ledger.current().bytes(.activations), 0, "\(name) \(engine): activations outlive the network")
                XCTAssertEqual(peaks[16], peaks[512], "\(name) \(engine): the peak grew with the batch")
                XCTAssertEqual(peaks[40], peaks[512], "\(name) \(engine): a last short micro-batch changed the peak")
                // A batch smaller than the micro-batch books only its own rows.
                let small = try InferenceNetwork(spec: spec, parameters: randomParameters(seed: 3), microBatch: 16,
                                                 engine: engine, ledger: ledger)
                XCTAssertEqual(try evaluatedActivationPeak(small, batch: 5, ledger: ledger), predictedActivationPeak(spec, rows: 5))
                XCTAssertTrue(ledger.violations.isEmpty, "\(ledger.violations)")
            }
        }
    }

    /// The activation peak booked while `network` evaluates one batch of `batch` examples.
    private func evaluatedActivationPeak(_ network: InferenceNetwork, batch: Int, ledger: Ledger) throws -> Int {
        let x = images(network.spec, batch: batch, ledger: ledger)
        let labels = [Int32](repeating: 0, count: batch)
        ledger.resetPeaks()
        _ = labels.withUnsafeBufferPointer { network.evaluate(images: x, labels: $0.baseAddress!) }
        return ledger.phasePeak(.evaluate, .activations)
    }

    /// Weights are the model's parameters (the paper's #params) plus BatchNorm's running mean and
    /// variance; nothing of training is booked, and the conv scratch does not depend on the batch.
    func testOnlyTheModelsWeightsAreBooked() throws {
        let spec = narrowVgg8b()
        let ledger = Ledger()
        let network = try InferenceNetwork(spec: spec, parameters: randomParameters(seed: 3), microBatch: 16,
                                           engine: .im2col, ledger: ledger)
        let runningStats = 2 * (spec.convBlocks.map(\.outChannels).reduce(0, +) + spec.linearBlockCount * spec.numHidden)
        XCTAssertEqual(ledger.current().bytes(.weights), 4 * (spec.parameterCount + runningStats))
        let workspace = ledger.current().bytes(.workspace)
        let x = images(spec, batch: 64, ledger: ledger)
        let labels = [Int32](repeating: 0, count: 64)
        _ = labels.withUnsafeBufferPointer { network.evaluate(images: x, labels: $0.baseAddress!) }
        let peak = ledger.peak()
        for category in [Category.headWeights, .gradients, .optimizerState, .activationGrads, .lossTemp] {
            XCTAssertEqual(peak.bytes(category), 0, "\(category) booked")
        }
        XCTAssertEqual(ledger.current().bytes(.workspace), workspace)
    }

    func testMissingOrMisshapenTensorIsNamed() {
        let spec = narrowVgg8b()
        let ledger = Ledger()
        var tensors: [String: Tensor] = [:]
        _ = try? InferenceNetwork(spec: spec, parameters: .load { name, tensor in tensors[name] = tensor }, ledger: ledger)
        XCTAssertEqual(tensors.count, 6 * 6 + 6 + 2, "map and BN tensors of 6 conv blocks and 1 Linear block, and the output's 2")

        var lacking = tensors
        lacking["blocks.2.bn.running_var"] = nil
        XCTAssertThrowsError(try InferenceNetwork(spec: spec, parameters: .shared { lacking[$0] }, ledger: ledger)) { error in
            XCTAssertEqual(error as? InferenceNetworkError, .missingTensor(name: "blocks.2.bn.running_var"))
            XCTAssertTrue("\(error)".contains("blocks.2.bn.running_var"), "\(error)")
        }
        var misshapen = tensors
        misshapen["output.weight"] = Tensor([10, 63], .weights, label: "wrong", ledger: ledger)
        XCTAssertThrowsError(try InferenceNetwork(spec: spec, parameters: .shared { misshapen[$0] }, ledger: ledger)) { error in
            XCTAssertEqual(error as? InferenceNetworkError, .shapeMismatch(name: "output.weight", shape: [10, 63], expected: [10, 64]))
        }
        // Shared tensors are used as they are: nothing more is booked as weights.
        let before = ledger.current().bytes(.weights)
        XCTAssertNoThrow(try InferenceNetwork(spec: spec, parameters: .shared { tensors[$0] }, ledger: ledger))
        XCTAssertEqual(ledger.current().bytes(.weights), before)
    }
}
