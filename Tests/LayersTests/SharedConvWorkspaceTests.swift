import MemoryLedger
import NumericTestSupport
import Randomness
import Tensors
import XCTest
@testable import Layers

/// The network books one conv workspace for every conv block and sim head; a block trained
/// through a view of it gives the same bits as a block with its own.
final class SharedConvWorkspaceTests: XCTestCase {
    func testNetworkBooksOneWorkspaceOfTheLargestBound() {
        var spec = ModelSpec()
        spec.kind = .vgg8b
        spec.featMult = 1.0 / 32
        spec.numHidden = 16
        let ledger = Ledger()
        let network = Network(spec: spec, seed: 3, ledger: ledger)
        let geometries = spec.convBlocks.map { ConvGeometry(inChannels: $0.inChannels, outChannels: $0.outChannels, height: $0.height, width: $0.width) }
        let sims = geometries.map { ConvGeometry(inChannels: $0.outChannels, outChannels: $0.outChannels, height: $0.height, width: $0.width) }
        XCTAssertEqual(ledger.current().bytes(.workspace), ConvWorkspace.bytes(covering: geometries + sims))
        XCTAssertLessThan(ledger.current().bytes(.workspace), geometries.map { ConvWorkspace.bytes($0, engine: .im2col) }.reduce(0, +))
        XCTAssertNotNil(network.convWorkspace)
    }

    func testBlockThroughASharedWorkspaceGivesTheSameBits() {
        let geometry = ConvGeometry(inChannels: 2, outChannels: 4, height: 6, width: 6)
        let labels: [Int32] = [0, 1, 2, 1]
        var random = TestRandom(seed: 5)
        let input = random.uniform(labels.count * 2 * 36).map { Float($0) }
        func run(shared: Bool) -> (handOff: [Float], weights: [Float], loss: Float) {
            let ledger = Ledger()
            var rng = Xoshiro256(seed: 9)
            let workspace = shared
                ? ConvWorkspace(ConvGeometry(inChannels: 8, outChannels: 8, height: 12, width: 12), alsoServing: [geometry, ConvGeometry(inChannels: 4, outChannels: 4, height: 6, width: 6)], ledger: ledger)
                : nil
            let block = HiddenBlock<ConvMap>(index: 0, geometry: geometry, poolAfter: true, classes: 3, dimInDecoder: 16, loss: .predsim, beta: 0.99,
                                  nonlinearity: .leakyRelu, dropout: 0.1, rng: &rng, ledger: ledger, sharedWorkspace: workspace)
            block.optimizer = Optimizer(block.localParameters, settings: OptimizerSettings(), ledger: ledger)
            let x = Tensor([labels.count, 2, 6, 6], .input, label: "x", ledger: ledger)
            x.copy(from: input)
            let r = labels.withUnsafeBufferPointer { block.trainLocal(x, labels: $0.baseAddress!, lr: 1e-2, dropoutSeed: 7) }
            return (r.handOff.array, block.weight.value.array + (block.heads?.simWeight?.value.array ?? []), r.stats.loss)
        }
        let own = run(shared: false), shared = run(shared: true)
        // Bit equality, not a rounding bound: the workspace is scratch memory only; both runs
        // evaluate the same kernels on the same values in the same order (one engine, one
        // thread split), so every rounding is the same. A bound would hide a workspace overlap
        // that corrupts a few values by less than it.
        XCTAssertEqual(own.handOff, shared.handOff)
        XCTAssertEqual(own.weights, shared.weights)
        XCTAssertEqual(own.loss, shared.loss)
    }
}
