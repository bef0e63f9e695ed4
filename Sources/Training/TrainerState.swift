import Layers
import MemoryLedger
import Shards
import Foundation

/// Where a run stands: the loader cursor, the step counter (dropout masks derive from it) and
/// the running sums of the current epoch's metrics. Saved in every checkpoint, so a resumed
/// run continues exactly and still reports whole-epoch metrics.
public struct TrainerState: Codable, Sendable, Equatable {
    /// Where the loader stands in the training split.
    public var cursor: LoaderCursor
    /// Steps done since the run started.
    public var globalStep: Int = 0
    /// Steps done in the current epoch.
    public var stepInEpoch: Int = 0
    /// Examples trained on in the current epoch.
    public var samplesInEpoch: Int = 0
    /// Sum over the epoch of the output loss times the batch size.
    public var outputLossSum: Double = 0
    /// Examples the output layer got wrong this epoch.
    public var wrongSum: Int = 0
    /// Per block: sum of the pred term times the batch size.
    public var predLossSums: [Double] = []
    /// Per block: sum of the sim term times the batch size.
    public var simLossSums: [Double] = []
    /// Per block: examples its pred head got wrong.
    public var localWrongSums: [Int] = []
    /// Per block: whether it has a classifying head.
    public var hasLocalError: [Bool] = []
    /// Training seconds of this epoch before a resume.
    public var secondsBefore: Double = 0

    /// The state at the start of a run whose loader stands at `cursor`.
    public init(cursor: LoaderCursor) { self.cursor = cursor }

    mutating func accumulate(_ stats: StepStats, count: Int, layers: Int) {
        if predLossSums.count != layers {
            predLossSums = Array(repeating: 0, count: layers)
            simLossSums = Array(repeating: 0, count: layers)
            localWrongSums = Array(repeating: 0, count: layers)
            hasLocalError = Array(repeating: false, count: layers)
        }
        stepInEpoch += 1
        samplesInEpoch += count
        outputLossSum += Double(stats.outputLoss) * Double(count)
        wrongSum += count - stats.correct
        for (i, b) in stats.blocks.enumerated() {
            predLossSums[i] += Double(b.predLoss) * Double(count)
            simLossSums[i] += Double(b.simLoss) * Double(count)
            if let wrong = b.wrong { localWrongSums[i] += wrong; hasLocalError[i] = true }
        }
    }

    var meanOutputLoss: Double { samplesInEpoch == 0 ? 0 : outputLossSum / Double(samplesInEpoch) }
    var trainError: Double { samplesInEpoch == 0 ? 0 : 100 * Double(wrongSum) / Double(samplesInEpoch) }

    func epochMetrics(epoch: Int, lr: Float, seconds: Double, testError: Double?, peak: LedgerSnapshot) -> EpochMetrics {
        let n = Double(max(samplesInEpoch, 1))
        let layers = predLossSums.indices.map { i in
            EpochMetrics.LayerMetrics(layer: i, loss: (predLossSums[i] + simLossSums[i]) / n,
                                      predLoss: predLossSums[i] / n, simLoss: simLossSums[i] / n,
                                      error: hasLocalError[i] ? 100 * Double(localWrongSums[i]) / n : nil)
        }
        var byCategory: [String: Int] = [:]
        for c in Category.allCases { byCategory[c.description] = peak.bytes(c) }
        return EpochMetrics(epoch: epoch + 1, lr: lr, trainLoss: meanOutputLoss, trainError: trainError,
                            testError: testError, layers: layers, seconds: seconds,
                            samplesPerSecond: Double(samplesInEpoch) / max(seconds, 1e-9),
                            ledgerPeak: byCategory, ledgerPeakTotal: peak.total,
                            peakRSS: ProcessMemory.read().peakRSS, steps: stepInEpoch)
    }

    /// Moves the cursor to the start of the next epoch and clears the sums.
    mutating func finishEpoch() {
        let next = LoaderCursor(fingerprint: cursor.fingerprint, seed: cursor.seed, epoch: cursor.epoch + 1,
                                recordsConsumed: 0, shuffle: cursor.shuffle, poolBlocks: cursor.poolBlocks)
        let step = globalStep
        self = TrainerState(cursor: next)
        globalStep = step
    }
}

extension EpochMetrics {
    /// One human line per epoch, as printed by `train`.
    public func summaryLine(epochs: Int) -> String {
        let test = testError.map { String(format: "%.2f%%", $0) } ?? "-"
        let local = layers.compactMap { $0.error.map { String(format: "%.1f", $0) } }.joined(separator: "/")
        return String(format: "epoch %d/%d  lr %.2e  train loss %.4f  train err %.2f%%  test err %@  local err %@  %.1fs  %.0f samples/s  ledger peak %.1f MiB  RSS %.1f MiB",
                      epoch, epochs, lr, trainLoss, trainError, test, local.isEmpty ? "-" : local, seconds,
                      samplesPerSecond, Double(ledgerPeakTotal) / 1_048_576, Double(peakRSS) / 1_048_576)
    }
}
