import MemoryLedger
import Tensors

/// What a stage's part of one training step did: the hand-off for the next stage (nil when the
/// stage ends with the output layer) and the statistics of its blocks (and of the output layer).
public struct StageStepResult {
    /// dropout(h) of the stage's last block, for the next stage (nil after the output layer).
    public var handOff: Tensor?
    /// The stage's blocks, in order; `firstBlock` is the stage's first block.
    public var stats: StepStats
}

extension Network {
    /// The local step of `blocks` (consecutive hidden blocks) on their input `input` (the
    /// batch for the first stage, the previous stage's hand-off for the others), and of the
    /// output layer when `trainsOutput`. `trainStep` in local mode is this over every block
    /// with the output layer, so a run split into stages (one per process) computes exactly
    /// what one process does, provided each stage sees the same inputs.
    ///
    /// Lifetimes as in `trainStep`: block k's input hand-off is freed as soon as block k
    /// returns (the caller's `input` aside); the result holds only the stage's hand-off.
    public func trainStage(_ input: Tensor, labels: UnsafePointer<Int32>, lr: Float, step: Int,
                           blocks range: Range<Int>, trainsOutput: Bool) -> StageStepResult {
        precondition(spec.loss.isLocal && schedule == .simultaneous, "stages train local losses under the simultaneous schedule")
        precondition(range.lowerBound >= heldBlocks.lowerBound && range.upperBound <= heldBlocks.upperBound, "blocks \(range), held \(heldBlocks)")
        precondition(!trainsOutput || holdsOutput, "the output layer trains on the stage holding the last block")
        let convCount = table.convLayers.count
        var x: Tensor? = input
        var blockStats: [BlockStepStats] = []
        blockStats.reserveCapacity(range.count)
        let convRange = range.clamped(to: 0..<convCount)
        if let chunk = chunkSize, chunk < input.rowCount, !convRange.isEmpty {
            // Chunked conv blocks hand on through `ChunkedHandOff`: a block whose hand-off is
            // cheap to recompute (vgg8b's first) keeps the recipe, not the tensor, when the
            // next block is a conv block of this stage that reads it a chunk at a time.
            var source: ChunkedHandOff? = .tensor(x!)
            for i in convRange {
                let b = convBlocks[i - convOffset]
                let recompute = i + 1 < convRange.upperBound && b.handOffIsCheapToRecompute
                let r = b.trainLocalChunked(source!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index),
                                            chunk: chunk, recomputeHandOff: recompute)
                source = r.handOff  // releases block k's input hand-off
                blockStats.append(r.stats)
            }
            x = source!.tensor
            source = nil
        } else {
            for i in convRange {
                let b = convBlocks[i - convOffset]
                let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index), chunk: chunkSize)
                x = r.handOff
                blockStats.append(r.stats)
            }
        }
        for i in range where i >= convCount {
            let b = blocks[i - convCount - linearOffset]
            let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index), chunk: chunkSize)
            x = r.handOff  // releases block k's input hand-off
            blockStats.append(r.stats)
        }
        guard trainsOutput else {
            return StageStepResult(handOff: x, stats: StepStats(outputLoss: 0, correct: 0, blocks: blockStats,
                                                                firstBlock: range.lowerBound, outputTrained: false))
        }
        let w = spec.loss.weights(beta: spec.beta)
        let r = StepProfiler.measure(.outputLayer, layer: StepProfiler.outputLayer) {
            output.train(x!, labels: labels, scale: w.output, wantInputGrad: false)
        }
        x = nil  // the last hand-off
        ledger.enter(.update, layer: output.index, label: "update")
        StepProfiler.measure(.update, layer: StepProfiler.outputLayer) { output.optimizer!.step(lr: lr) }
        for p in output.parameters { p.dropGrad() }
        ledger.enter(.idle)
        return StageStepResult(handOff: nil, stats: StepStats(outputLoss: r.loss, correct: r.correct, blocks: blockStats,
                                                              firstBlock: range.lowerBound))
    }

    /// Inference through `blocks` (BatchNorm with running statistics, no dropout, no heads):
    /// their output, the next stage's input.
    public func evaluateStage(_ input: Tensor, blocks range: Range<Int>) -> Tensor {
        var x = input
        for i in range {
            let b = hiddenBlock(i)
            x = b.conv?.forwardEval(x) ?? b.linear!.forwardEval(x)
        }
        ledger.enter(.idle)
        return x
    }

    /// Correct predictions of the output layer on `input` (the last block's output).
    public func evaluateOutput(_ input: Tensor, labels: UnsafePointer<Int32>) -> Int {
        let logits = output.logits(input, phase: .evaluate)
        var correct = 0
        for r in 0..<logits.rowCount where CrossEntropy.argmax(logits, row: r) == Int(labels[r]) { correct += 1 }
        ledger.enter(.idle)
        return correct
    }
}
