import Layers

/// The greedy schedule's rounds in epochs, and the learning rate inside them.
extension TrainingConfig {
    /// Whether the run trains block by block.
    public var isGreedy: Bool { schedule == .greedy }

    /// Epochs of each greedy round (one round per hidden block): `epochsPerBlock` each, or
    /// `epochs / blocks` each with the remainder going to the last rounds (one more epoch each).
    public func roundLengths(blocks: Int) -> [Int] {
        precondition(blocks > 0, "a model has at least one hidden block")
        if let epochsPerBlock { return Array(repeating: epochsPerBlock, count: blocks) }
        let base = epochs / blocks, extra = epochs % blocks
        return (0..<blocks).map { base + ($0 >= blocks - extra ? 1 : 0) }
    }

    /// Epochs the run trains in all: `epochs`, or the sum of the greedy rounds.
    public func runEpochs(blocks: Int) -> Int {
        isGreedy ? roundLengths(blocks: blocks).reduce(0, +) : epochs
    }

    /// The greedy round an epoch (0-based) belongs to, the epoch's place in it and the round's
    /// length. Epochs past the end belong to the last round.
    public func roundPosition(epoch: Int, blocks: Int) -> (round: Int, epochInRound: Int, length: Int) {
        var start = 0
        let lengths = roundLengths(blocks: blocks)
        for (k, length) in lengths.enumerated() {
            if epoch < start + length || k == lengths.count - 1 { return (k, epoch - start, length) }
            start += length
        }
        preconditionFailure("no rounds")
    }

    /// The learning rate of an epoch (0-based). Simultaneous: `learningRate(epoch:)`. Greedy:
    /// each round runs the whole schedule scaled to its length: milestone m (out of `epochs`)
    /// applies from the round's epoch e with e x epochs >= m x length (integers, no rounding).
    public func learningRate(epoch: Int, blocks: Int) -> Float {
        guard isGreedy else { return learningRate(epoch: epoch) }
        let position = roundPosition(epoch: epoch, blocks: blocks)
        var lr = self.lr
        for m in milestones where position.epochInRound * max(epochs, 1) >= m * position.length { lr *= lrDecay }
        return lr
    }

    /// "schedule greedy: 3 rounds of 66, 67, 67 epochs (--epochs 200 / 3 blocks, the remainder to
    /// the last rounds), milestones scaled to each round; the output layer trains in the last".
    public func scheduleLine(blocks: Int) -> String {
        let lengths = roundLengths(blocks: blocks)
        let how = epochsPerBlock != nil ? "--epochs-per-block \(epochsPerBlock!)"
            : "--epochs \(epochs) / \(blocks) blocks\(epochs % blocks == 0 ? "" : ", the remainder to the last rounds")"
        return "schedule greedy: \(blocks) rounds of \(lengths.map(String.init).joined(separator: ", ")) epochs (\(how)); "
            + "milestones scaled to each round; the output layer trains in the last round"
    }
}
