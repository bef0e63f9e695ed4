import Layers
import NumericTestSupport
import Tensors
import XCTest

/// Compares a chunked local step with the whole-batch step of an identical twin: the same
/// hand-off, losses, errors, updated parameters and running statistics, within the rounding
/// bound of the step (`tolerance`: the chunked step sums in another order).
///
/// Both twins use SGD: its first step moves each weight by lr times its gradient, so the
/// updates compare the gradients themselves. Adam's first step is lr sign(g), which turns
/// gradients that are zero in exact arithmetic (the bias before BatchNorm) into +-lr from
/// rounding noise, in either twin.
enum ChunkedStepComparison {
    /// Largest difference allowed, relative to the largest update (or value) compared, between
    /// two Float32 evaluations of the same step: each twin is within `BlockStepBound.relative`
    /// of the exact step (its sums, in any order and grouping, against their lengths), so the two
    /// are within twice that of each other, for `steps` steps of a network of `blocks` blocks
    /// (0 for a block alone). `longestSum` is the longest sum of the step: BatchNorm's statistics
    /// and the weight gradient over B H W, the similarity's B^2 mean, or a -bpf head's projection.
    /// For a conv block of 8 images at 6x6 (K = 288) this is 3.3e-4; measured differences are
    /// about 1e-5; a chunked step that leaves a chunk out of its batch statistics or reads a
    /// chunk at the wrong rows differs by more than 1e-2 (`ChunkedNetworkTests`'s broken variants
    /// must exceed it).
    static func tolerance(longestSum: Int, blocks: Int = 0, steps: Int = 1) -> Double {
        2 * Double(steps) * (blocks == 0 ? BlockStepBound.relative(longestSum: longestSum)
                                         : BlockStepBound.networkRelative(longestSum: longestSum, blocks: blocks))
    }

    static var sgd: OptimizerSettings {
        var s = OptimizerSettings()
        s.kind = .sgd
        return s
    }

    /// Largest |a - e| over the tensor, relative to `scale`.
    static func relativeError(_ actual: [Float], _ expected: [Float], scale: Double) -> Double {
        precondition(actual.count == expected.count)
        var worst = 0.0
        for (a, e) in zip(actual, expected) { worst = max(worst, abs(Double(a) - Double(e))) }
        return worst / max(scale, 1e-30)
    }

    static func maxAbs(_ v: [Float]) -> Double { v.reduce(0) { max($0, abs(Double($1))) } }

    /// Asserts two steps agree. `before` holds the parameters before the step (the twins
    /// started equal); each parameter's update is compared relative to the largest update of the
    /// block (an update that is zero in exact arithmetic is rounding noise in both).
    static func assertSame(what: String, tolerance: Double, parameters: [Parameter], before: [[Float]], reference: [[Float]],
                           runningStats: [[Float]], referenceRunningStats: [[Float]],
                           handOff: Tensor, referenceHandOff: Tensor, stats: BlockStepStats, referenceStats: BlockStepStats,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(handOff.shape, referenceHandOff.shape, "\(what): hand-off shape", file: file, line: line)
        let handOffError = relativeError(handOff.array, referenceHandOff.array, scale: maxAbs(referenceHandOff.array))
        XCTAssertLessThanOrEqual(handOffError, tolerance, "\(what): hand-off", file: file, line: line)
        XCTAssertEqual(Double(stats.predLoss), Double(referenceStats.predLoss), accuracy: tolerance * max(1, abs(Double(referenceStats.predLoss))),
                       "\(what): pred loss", file: file, line: line)
        XCTAssertEqual(Double(stats.simLoss), Double(referenceStats.simLoss), accuracy: tolerance * max(1, abs(Double(referenceStats.simLoss))),
                       "\(what): sim loss", file: file, line: line)
        XCTAssertEqual(stats.wrong, referenceStats.wrong, "\(what): errors of the pred head", file: file, line: line)
        let updates = zip(parameters, before).map { p, old in zip(old, p.value.array).map { $0 - $1 } }
        let referenceUpdates = zip(reference, before).map { new, old in zip(old, new).map { $0 - $1 } }
        let blockScale = referenceUpdates.map(maxAbs).max() ?? 0
        XCTAssertGreaterThan(blockScale, 0, "\(what): the step must change something", file: file, line: line)
        for (i, p) in parameters.enumerated() {
            let error = relativeError(updates[i], referenceUpdates[i], scale: blockScale)
            XCTAssertLessThanOrEqual(error, tolerance, "\(what): update of \(p.name)", file: file, line: line)
            XCTAssertNil(p.grad, "\(what): \(p.name) keeps a gradient", file: file, line: line)
        }
        for (i, (s, r)) in zip(runningStats, referenceRunningStats).enumerated() {
            let error = relativeError(s, r, scale: max(1, maxAbs(r)))
            XCTAssertLessThanOrEqual(error, tolerance, "\(what): running statistic \(i)", file: file, line: line)
        }
    }
}
