import MemoryLedger
import Randomness
import Tensors

/// The greedy schedule: one block's training state at a time.
extension Network {
    /// Hidden blocks of every kind, in order, as the greedy schedule walks them.
    private var roundCount: Int { hiddenBlockCount }

    /// Starts round `k` (greedy schedule): blocks up to k wake (their map weights are drawn and
    /// allocated only now), blocks before k freeze (their heads and optimizer
    /// state are freed, their weights booked as `frozenWeights`), block k gets its heads, drawn
    /// from a generator of (seed, k) alone, and its optimizer; in the last round the output
    /// layer gets its optimizer too. Rounds only move forward; starting the current round again
    /// does nothing. A resumed run starts its checkpoint's round on a fresh network and then
    /// loads the tensors.
    public func beginRound(_ k: Int) {
        precondition(schedule == .greedy, "rounds belong to the greedy schedule")
        precondition(k >= 0 && k < roundCount, "round \(k) of \(roundCount)")
        if let round { precondition(k >= round, "rounds only move forward (at \(round), asked for \(k))") }
        guard round != k else { return }
        // Freezing first frees the last round's heads and optimizer state before block k's weight
        // is allocated. A resumed run starts its round on a fresh network: every block up to k
        // wakes (a frozen dormant block's weight is booked as frozen at once).
        for b in convBlocks where b.index < k { b.freeze() }
        for b in blocks where b.index < k { b.freeze() }
        for b in convBlocks where b.index <= k { b.wake() }
        for b in blocks where b.index <= k { b.wake() }
        var rng = Xoshiro256(seed: Xoshiro256.derive(seed, 0x6EED, UInt64(k)))
        if k < convBlocks.count {
            let b = convBlocks[k]
            b.installHeads(rng: &rng)
            b.heads?.keepsSimOutput = keepsSimOutput
            b.optimizer = Optimizer(b.localParameters, settings: optimizerSettings, ledger: ledger)
        } else {
            let b = blocks[k - convBlocks.count]
            b.installHeads(rng: &rng)
            b.heads?.keepsSimOutput = keepsSimOutput
            b.optimizer = Optimizer(b.localParameters, settings: optimizerSettings, ledger: ledger)
        }
        if k == roundCount - 1 {
            output.optimizer = Optimizer(output.parameters, settings: optimizerSettings, ledger: ledger)
        }
        round = k
        // A marker in the ledger's timeline: the round starts; its layer is the block that trains.
        ledger.enter(.round, layer: k, label: "greedy round")
    }

    /// One step of greedy round k > 0 on the frozen prefix's output read back from a hand-off
    /// cache: block k trains on `handOffs` ((B, block k-1's hand-off shape), what `frozenForward`
    /// would compute) exactly as `trainStep(images:)` trains it on the prefix's output, so the
    /// same inputs give the same bits.
    public func trainStep(handOffs: Tensor, labels: UnsafePointer<Int32>, lr: Float, step: Int) -> StepStats {
        precondition(schedule == .greedy && (round ?? 0) > 0, "hand-offs are read in greedy rounds after the first")
        precondition(Array(handOffs.shape.dropFirst()) == handOffShape(ofBlock: round! - 1), "hand-off shape \(handOffs.shape)")
        return greedyStep(images: handOffs, labels: labels, lr: lr, step: step, prefixDone: true)
    }

    /// One example's hand-off of hidden block `j` (its output after pooling): [C, H, W] or [F].
    public func handOffShape(ofBlock j: Int) -> [Int] { hiddenOutputShape(j) }

    /// One step of round k: the batch runs forward through the frozen blocks (`frozenForward`),
    /// block k trains on what they hand on as in the simultaneous schedule (whole or chunked),
    /// and its hand-off goes to the output layer in the last round or is dropped before it.
    /// `prefixDone`: `images` is the frozen prefix's output already (a hand-off cache).
    func greedyStep(images: Tensor, labels: UnsafePointer<Int32>, lr: Float, step: Int, prefixDone: Bool = false) -> StepStats {
        guard let k = round else { preconditionFailure("greedy schedule: beginRound before the first step") }
        let last = k == roundCount - 1
        let prefix = prefixDone ? 0 : k
        let chunk = chunkSize.flatMap { $0 < images.rowCount ? $0 : nil }
        var stats = BlockStepStats()
        var x: Tensor?
        // Scopes end at the last use of each result, so debug and release builds free the same
        // bytes in the same order: the input is released when x takes the hand-off.
        if let chunk {
            // Chunked: the frozen prefix's output whole, or recomputed a chunk at a time when
            // that is cheap; block k's hand-off is written only when the output layer reads it.
            var source: ChunkedHandOff? = !prefixDone && table.greedyRecomputesPrefix(round: k, chunked: true)
                ? .frozenPrefix(FrozenPrefix(images: images, outputShape: hiddenOutputShape(k - 1)) { [unowned self] in
                    self.frozenChain($0, through: k)
                  })
                : .tensor(frozenForward(images, through: prefix))
            let seed = dropoutSeed(step: step, layer: k)
            if k < convBlocks.count {
                let r = convBlocks[k].trainLocalChunked(source!, labels: labels, lr: lr, dropoutSeed: seed, chunk: chunk,
                                                        recomputeHandOff: false, writeHandOff: last)
                source = r.handOff
                stats = r.stats
            } else {
                let r = blocks[k - convBlocks.count].trainLocalChunked(source!, labels: labels, lr: lr, dropoutSeed: seed, chunk: chunk,
                                                                       recomputeHandOff: false, writeHandOff: last)
                source = r.handOff
                stats = r.stats
            }
            x = source?.tensor
            source = nil
        } else {
            x = frozenForward(images, through: prefix)
            if k < convBlocks.count {
                let b = convBlocks[k]
                let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index))
                x = r.handOff
                stats = r.stats
            } else {
                let b = blocks[k - convBlocks.count]
                let r = b.trainLocal(x!, labels: labels, lr: lr, dropoutSeed: dropoutSeed(step: step, layer: b.index))
                x = r.handOff
                stats = r.stats
            }
        }
        guard last else {
            x = nil  // no block reads it in this round
            ledger.enter(.idle)
            return StepStats(outputLoss: 0, correct: 0, blocks: [stats], firstBlock: k, outputTrained: false)
        }
        let w = spec.loss.weights(beta: spec.beta)
        let r = output.train(x!, labels: labels, scale: w.output, wantInputGrad: false)
        x = nil
        ledger.enter(.update, layer: output.index, label: "update")
        output.optimizer!.step(lr: lr)
        for p in output.parameters { p.dropGrad() }
        ledger.enter(.idle)
        return StepStats(outputLoss: r.loss, correct: r.correct, blocks: [stats], firstBlock: k)
    }

    /// One example's hand-off of hidden block `j`.
    private func hiddenOutputShape(_ j: Int) -> [Int] {
        j < convBlocks.count ? convBlocks[j].outputShape : blocks[j - convBlocks.count].outputShape
    }

    /// The input of block k: the batch through the frozen blocks 0..<k (`forwardEval`: BatchNorm
    /// running statistics, no dropout, each block's input freed when its output exists). With a
    /// `chunkSize` smaller than the batch this runs in micro-batches of that many examples into
    /// one (B, hand-off) tensor, so only one micro-batch's activations are live besides it; an
    /// example's output does not depend on its micro-batch.
    // images: (B, C, H, W) -> (B, block k-1's hand-off shape), or images itself for k = 0
    public func frozenForward(_ images: Tensor, through k: Int) -> Tensor {
        guard k > 0 else { return images }
        let batch = images.rowCount
        let micro = min(batch, chunkSize ?? batch)
        guard micro < batch else { return frozenChain(images, through: k) }
        let out = Tensor([batch] + hiddenOutputShape(k - 1), .activations, layer: k - 1, label: "handoff", ledger: ledger, zeroed: false)
        var start = 0
        while start < batch {
            let range = start..<min(batch, start + micro)
            do {
                let y = frozenChain(images.rows(range), through: k)
                out.rows(range).copy(from: y)
            }
            start = range.upperBound
        }
        return out
    }

    /// `forwardEval` of blocks 0..<k on `x`.
    func frozenChain(_ input: Tensor, through k: Int) -> Tensor {
        var x = input
        for b in convBlocks.prefix(k) { x = b.forwardEval(x) }
        for b in blocks.prefix(max(0, k - convBlocks.count)) { x = b.forwardEval(x) }
        return x
    }
}
