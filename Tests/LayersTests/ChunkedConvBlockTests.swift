@testable import Layers
import MemoryLedger
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// `HiddenBlock<ConvMap>.trainLocal(..., chunk:)`: a conv block's local step computed a few images at a
/// time with recomputation equals the whole-batch step (hand-off with the batch's channel
/// dropout mask and max pool, losses, updates, running statistics), and holds less.
final class ChunkedConvBlockTests: XCTestCase {
    let batch = 8, classes = 3
    var labels: [Int32] { (0..<batch).map { Int32(($0 * 5) % classes) } }

    private struct Shape {
        var inChannels = 2, outChannels = 6, size = 6
        var poolAfter = true
        /// 24: the pred head pools 6x6 maps to 2x2 (6 x 2 x 2 = 24 features).
        var dimInDecoder = 24
    }

    private func makeBlock(_ loss: LossKind, _ s: Shape, ledger: Ledger = Ledger()) -> HiddenBlock<ConvMap> {
        var rng = Xoshiro256(seed: 23)
        let geometry = ConvGeometry(inChannels: s.inChannels, outChannels: s.outChannels, height: s.size, width: s.size)
        let block = HiddenBlock<ConvMap>(index: 1, geometry: geometry, poolAfter: s.poolAfter, classes: classes, dimInDecoder: s.dimInDecoder,
                              loss: loss, beta: loss == .predsimBpf ? 0.3 : 0.7, nonlinearity: .leakyRelu, dropout: 0.3,
                              rng: &rng, ledger: ledger)
        block.optimizer = Optimizer(block.localParameters, settings: ChunkedStepComparison.sgd, ledger: ledger)
        // Heads that start at zero would give the block no gradient on the first step.
        var init_ = Xoshiro256(seed: 98)
        for p in block.heads!.parameters { p.initUniform(bound: 0.5, rng: &init_) }
        return block
    }

    private func input(_ s: Shape, ledger: Ledger = .shared) -> Tensor {
        let x = Tensor([batch, s.inChannels, s.size, s.size], .activations, layer: 0, label: "block input", ledger: ledger, zeroed: false)
        var rng = Xoshiro256(seed: 6)
        for i in 0..<x.count { x.pointer[i] = rng.uniform(-1, 1) + 2 }
        return x
    }

    private func step(_ block: HiddenBlock<ConvMap>, _ x: Tensor, chunk: Int?) -> (handOff: Tensor, stats: BlockStepStats) {
        labels.withUnsafeBufferPointer { block.trainLocal(x, labels: $0.baseAddress!, lr: 1, dropoutSeed: 777, chunk: chunk) }
    }

    private func checkChunkedEqualsWholeBatch(_ loss: LossKind, _ s: Shape, file: StaticString = #filePath, line: UInt = #line) {
        let reference = makeBlock(loss, s)
        let before = reference.localParameters.map { $0.value.array }
        let x = input(s)
        let whole = step(reference, x, chunk: nil)
        for chunk in [1, 3, batch / 2] {
            let block = makeBlock(loss, s)
            let chunked = step(block, x, chunk: chunk)
            ChunkedStepComparison.assertSame(
                what: "\(loss) chunk \(chunk)", tolerance: stepTolerance(s), parameters: block.localParameters, before: before,
                reference: reference.localParameters.map { $0.value.array },
                runningStats: [block.runningMean.array, block.runningVar.array],
                referenceRunningStats: [reference.runningMean.array, reference.runningVar.array],
                handOff: chunked.handOff, referenceHandOff: whole.handOff, stats: chunked.stats, referenceStats: whole.stats,
                file: file, line: line)
        }
    }

    /// Twice the rounding bound of one step (`ChunkedStepComparison.tolerance`): the longest sums
    /// are BatchNorm's statistics and the weight gradients over B H W, the similarity's B^2 mean
    /// and the -bpf decoder's projection.
    private func stepTolerance(_ s: Shape) -> Double {
        ChunkedStepComparison.tolerance(longestSum: max(batch * s.size * s.size, batch * batch, LossKind.projectionSize))
    }

    func testChunkedPredsimStepWithPoolAfterEqualsTheWholeBatchStep() {
        checkChunkedEqualsWholeBatch(.predsim, Shape())
    }

    func testChunkedPredsimStepWithoutPoolEqualsTheWholeBatchStep() {
        var s = Shape()
        s.poolAfter = false
        checkChunkedEqualsWholeBatch(.predsim, s)
    }

    /// Three channels: the sim head flattens its conv output instead of the std, and a large
    /// dim_in_decoder leaves h unpooled for the pred head (both summaries are (B, C H W)).
    func testChunkedPredsimStepWithFlattenedSimAndUnpooledPredEqualsTheWholeBatchStep() {
        var s = Shape()
        s.outChannels = 3
        s.dimInDecoder = 200
        checkChunkedEqualsWholeBatch(.predsim, s)
    }

    func testChunkedPredStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.pred, Shape()) }
    func testChunkedSimStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.sim, Shape()) }
    func testChunkedPredsimBpfStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.predsimBpf, Shape()) }
    func testChunkedSimBpfStepEqualsTheWholeBatchStep() { checkChunkedEqualsWholeBatch(.simBpf, Shape()) }

    /// Each twin against the exact step, not only against each other: with SGD's first step
    /// (update = lr g, lr 1) the whole batch's and each chunked step's updates are minus the
    /// gradient of the Float64 local loss 0.3 CE(pred(avgpool(h))) + 0.7 L_sim(std(conv3x3_sim(h)))
    /// (h before dropout), each within `BlockStepBound.relative` of the block's largest gradient
    /// entry plus the finite-difference metric.
    func testChunkedAndWholeBatchPredsimStepsEachMatchTheFloat64Gradient() {
        let s = Shape()
        let x = input(s)
        let xValues = x.doubles
        let target = HeadReference.simTarget(labels: labels, classes: classes)
        let probe = makeBlock(.predsim, s)
        let before = probe.localParameters.map { $0.value.doubles }
        let pooling = probe.heads!.pooling
        let (c, oc, side) = (s.inChannels, s.outChannels, s.size)
        func localLoss(_ v: [[Double]]) -> Double {
            let h = ConvReference.convBlockH(xValues, batch: batch, inChannels: c, height: side, width: side,
                                             weight: v[0], bias: v[1], gamma: v[2], beta: v[3], slope: 0.01)
            let pooled = ConvReference.avgPool(h, planes: batch * oc, height: side, width: side,
                                               kernel: (pooling.kernelHeight, pooling.kernelWidth),
                                               padding: (pooling.padHeight, pooling.padWidth)).out
            let logits = Reference.linear(pooled, batch: batch, weight: v[4], outFeatures: classes, bias: v[5])
            let sim = ConvReference.conv3x3(h, batch: batch, channels: oc, height: side, width: side, weight: v[6], outChannels: oc, bias: nil)
            let features = ConvReference.simFeatures(sim, batch: batch, channels: oc, height: side, width: side)
            return 0.3 * Reference.crossEntropy(logits, labels: labels) + 0.7 * Reference.similarityLoss(features, rows: batch, target: target)
        }
        // The block's own parameters and the pred head; the sim head's weight (324 of 525
        // entries, most of the finite differences' cost) is left to the twin comparison.
        let checked = 0..<6
        let gradients = checked.map { i in
            numericalGradient(at: before[i]) { v in
                var all = before
                all[i] = v
                return localLoss(all)
            }
        }
        let longestSum = max(batch * side * side, batch * batch)
        let bound = BlockStepBound.relative(longestSum: longestSum) * gradients.map(maxAbs).max()!
            + BlockStepBound.finiteDifference(sums: BlockStepBound.forwardSums, longestSum: longestSum)
        func worstError(_ x: Tensor, chunk: Int?) -> (error: Double, name: String) {
            let block = makeBlock(.predsim, s)
            _ = step(block, x, chunk: chunk)
            return checked.map { i in
                let p = block.localParameters[i]
                return (zip(subtract(before[i], p.value.doubles), gradients[i]).map { abs($0 - $1) }.max()!, p.name)
            }.max { $0.error < $1.error }!
        }
        for chunk in [nil, 3] as [Int?] {
            let worst = worstError(x, chunk: chunk)
            XCTAssertLessThanOrEqual(worst.error, bound, "chunk \(chunk.map(String.init) ?? "none"): \(worst.name)")
        }
        // Broken variant: a chunked step that reads its first and last images swapped (each
        // paired with another's label).
        let swapped = input(s)
        let row = c * side * side
        for i in 0..<row { (swapped.pointer[i], swapped.pointer[(batch - 1) * row + i]) = (x.pointer[(batch - 1) * row + i], x.pointer[i]) }
        XCTAssertGreaterThan(worstError(swapped, chunk: 3).error, bound, "a chunked step with images swapped passes the bound")
    }

    /// A hand-off kept as its recipe (`RecomputedHandOff`) recomputes, a chunk of rows at a time
    /// or whole, exactly the hand-off the block would have written, with and without a max pool
    /// after; the block's update is the same either way, and only the recipe's frozen weights and
    /// statistics stay booked instead of the hand-off.
    func testRecomputedHandOffEqualsTheWrittenHandOff() {
        for poolAfter in [true, false] {
            var s = Shape()
            s.poolAfter = poolAfter
            let written = makeBlock(.predsim, s), kept = makeBlock(.predsim, s)
            let x = input(s)
            let (a, b) = labels.withUnsafeBufferPointer {
                (written.trainLocalChunked(.tensor(x), labels: $0.baseAddress!, lr: 1, dropoutSeed: 777, chunk: 3, recomputeHandOff: false),
                 kept.trainLocalChunked(.tensor(x), labels: $0.baseAddress!, lr: 1, dropoutSeed: 777, chunk: 3, recomputeHandOff: true))
            }
            guard case .tensor(let expected) = a.handOff, case .recomputed(let recipe) = b.handOff else {
                return XCTFail("hand-off kinds")
            }
            XCTAssertEqual(recipe.shape, expected.shape)
            // Both hand-offs, and the recipe's rows, each against the Float64 model of the recipe's
            // computation from its frozen weights and statistics (`frozenConvHandOff`): within the
            // rounding bound of the conv's sums of 9 C + 1 terms carried through BatchNorm.
            func model(_ rows: Range<Int>, maskFirstGroup: Int) -> [Rounded] {
                let rowSize = s.inChannels * s.size * s.size
                let mask = zeros([rows.count, s.outChannels, s.size, s.size])
                mask.fill(1)
                Dropout.apply(mask, p: recipe.dropout, seed: recipe.dropoutSeed, channelSize: s.size * s.size, firstGroup: maskFirstGroup)
                return BlockForwardModel.frozenConvHandOff(
                    x: Array(x.doubles[(rows.lowerBound * rowSize)..<(rows.upperBound * rowSize)]), batch: rows.count,
                    inChannels: s.inChannels, outChannels: s.outChannels, size: s.size, frozen: recipe.frozen.doubles,
                    slope: Double(recipe.nonlinearity.negativeSlope), mask: mask.doubles, poolAfter: poolAfter)
            }
            let wholeModel = model(0..<batch, maskFirstGroup: 0)
            assertWithinBound(expected.doubles, wholeModel, "pool after: \(poolAfter), written")
            let whole = recipe.materialized()
            assertWithinBound(whole.doubles, wholeModel, "pool after: \(poolAfter), recomputed whole")
            let rows = 3..<7
            let out = Tensor([rows.count] + Array(expected.shape.dropFirst()), .activations, label: "test")
            let scratch = Tensor([rows.count, s.outChannels, s.size, s.size], .activations, label: "test")
            recipe.materialize(rows: rows, into: out, scratch: scratch)
            assertWithinBound(out.doubles, model(rows, maskFirstGroup: rows.lowerBound * s.outChannels),
                              "pool after: \(poolAfter), rows \(rows)")
            // Broken variant: the rows' dropout mask drawn from the batch's first image.
            assertBoundCatches(out.doubles, model(rows, maskFirstGroup: 0), "pool after: \(poolAfter), rows with the first rows' mask")
            for (p, q) in zip(kept.localParameters, written.localParameters) { XCTAssertEqual(p.value.array, q.value.array, p.name) }
            XCTAssertEqual(recipe.frozen.count, kept.weight.count + 5 * s.outChannels)
        }
    }

    // MARK: memory

    private func activationPeak(_ s: Shape, chunk: Int?) -> Int {
        let ledger = Ledger()
        let block = makeBlock(.predsim, s, ledger: ledger)
        let x = input(s, ledger: ledger)
        ledger.resetPeaks()
        let handOff = step(block, x, chunk: chunk).handOff
        let peak = Phase.allCases.map { ledger.phasePeak($0, .activations) }.max()!
        XCTAssertEqual(ledger.current().bytes(.activations), x.byteCount + handOff.byteCount, "only input and hand-off are left")
        XCTAssertEqual(ledger.current().bytes(.activationGrads), 0)
        XCTAssertEqual(ledger.current().bytes(.gradients), 0)
        return peak
    }

    /// The chunked step holds three (chunk, C, H, W) buffers (x-hat, h, the sim conv's chunk):
    /// one more image costs exactly three maps; the whole batch holds more than any chunk of
    /// up to half of it.
    func testChunkedActivationPeakGrowsWithTheChunkNotTheBatch() {
        let s = Shape()
        let whole = activationPeak(s, chunk: nil)
        let map = s.outChannels * s.size * s.size * MemoryLayout<Float>.stride
        XCTAssertEqual(activationPeak(s, chunk: 3) - activationPeak(s, chunk: 2), 3 * map)
        XCTAssertEqual(activationPeak(s, chunk: 2) - activationPeak(s, chunk: 1), 3 * map)
        for chunk in [1, 2, 3] {
            XCTAssertLessThan(activationPeak(s, chunk: chunk), whole, "chunk \(chunk)")
        }
    }
}
