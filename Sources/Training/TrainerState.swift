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
    /// Greedy schedule: the round the network is in (nil under the simultaneous schedule).
    public var round: Int?
    /// Greedy schedule: examples of this epoch the output layer did not train on (it trains in
    /// the last round only); the output loss and error are over the others.
    public var outputSkipped: Int?
    /// Greedy schedule: per block, whether it trained this epoch (only those get metrics).
    public var trainedBlocks: [Bool]?

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
        if stats.outputTrained {
            outputLossSum += Double(stats.outputLoss) * Double(count)
            wrongSum += count - stats.correct
        } else {
            outputSkipped = (outputSkipped ?? 0) + count
        }
        if stats.firstBlock > 0 || stats.blocks.count < layers {
            if trainedBlocks == nil { trainedBlocks = Array(repeating: false, count: layers) }
            for i in stats.blocks.indices { trainedBlocks![stats.firstBlock + i] = true }
        }
        for (j, b) in stats.blocks.enumerated() {
            let i = stats.firstBlock + j
            predLossSums[i] += Double(b.predLoss) * Double(count)
            simLossSums[i] += Double(b.simLoss) * Double(count)
            if let wrong = b.wrong { localWrongSums[i] += wrong; hasLocalError[i] = true }
        }
    }

    /// Examples the output layer trained on this epoch.
    var outputSamples: Int { samplesInEpoch - (outputSkipped ?? 0) }
    var meanOutputLoss: Double { outputSamples == 0 ? 0 : outputLossSum / Double(outputSamples) }
    var trainError: Double { outputSamples == 0 ? 0 : 100 * Double(wrongSum) / Double(outputSamples) }

    func epochMetrics(epoch: Int, lr: Float, seconds: Double, testError: Double?, peak: LedgerSnapshot) -> EpochMetrics {
        let n = Double(max(samplesInEpoch, 1))
        let layers = predLossSums.indices.filter { trainedBlocks?[$0] ?? true }.map { i in
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
                            peakRSS: ProcessMemory.read().peakRSS, steps: stepInEpoch,
                            round: round.map { $0 + 1 }, outputTrained: outputSamples == 0 && samplesInEpoch > 0 ? false : nil)
    }

    /// Moves the cursor to the start of the next epoch and clears the sums.
    mutating func finishEpoch() {
        let next = LoaderCursor(fingerprint: cursor.fingerprint, seed: cursor.seed, epoch: cursor.epoch + 1,
                                recordsConsumed: 0, shuffle: cursor.shuffle, poolBlocks: cursor.poolBlocks)
        let step = globalStep, round = self.round
        self = TrainerState(cursor: next)
        globalStep = step
        self.round = round
    }
}

extension EpochMetrics {
    /// One human line per epoch, as printed by `train`.
    public func summaryLine(epochs: Int) -> String {
        let test = testError.map { String(format: "%.2f%%", $0) } ?? "-"
        let local = layers.compactMap { $0.error.map { String(format: "%.1f", $0) } }.joined(separator: "/")
        let round = self.round.map { " (round \($0))" } ?? ""
        let train = outputTrained == false ? "train loss -  train err -" : String(format: "train loss %.4f  train err %.2f%%", trainLoss, trainError)
        return String(format: "epoch %d/%d%@  lr %.2e  %@  test err %@  local err %@  %.1fs  %.0f samples/s  ledger peak %.1f MiB  RSS %.1f MiB",
                      epoch, epochs, round, lr, train, test, local.isEmpty ? "-" : local, seconds,
                      samplesPerSecond, Double(ledgerPeakTotal) / 1_048_576, Double(peakRSS) / 1_048_576)
    }
}
