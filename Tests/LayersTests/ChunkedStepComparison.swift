import Layers
import NumericTestSupport
import Tensors
import XCTest

/// Compares a chunked local step with the whole-batch step of an identical twin: the same
/// hand-off, losses, errors, updated parameters and running statistics, to float tolerance
/// (the chunked step sums in another order).
///
/// Both twins use SGD: its first step moves each weight by lr times its gradient, so the
/// updates compare the gradients themselves. Adam's first step is lr sign(g), which turns
/// gradients that are zero in exact arithmetic (the bias before BatchNorm) into +-lr from
/// rounding noise, in either twin.
enum ChunkedStepComparison {
    /// Largest difference allowed, relative to the largest update (or value) compared. The two
    /// twins evaluate the same sums in different orders (per chunk, then across chunks), so they
    /// differ by rounding only. Measured differences on a 2-core AMD EPYC (AVX2) under OpenBLAS
    /// core types unset / Haswell / Sandybridge and both conv engines: at most 9.8e-6; reported on
    /// AVX-512 machines: 1.16e-5. A chunked step that leaves a chunk out of its batch statistics or
    /// reads a chunk at the wrong rows differs by more than 1e-2 (`ChunkedNetworkTests`'s broken
    /// variants). 1e-4 sits an order of magnitude from each.
    static let tolerance = 1e-4

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
    static func assertSame(what: String, parameters: [Parameter], before: [[Float]], reference: [[Float]],
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
