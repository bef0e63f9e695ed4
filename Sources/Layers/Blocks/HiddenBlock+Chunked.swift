import MemoryLedger
import Tensors

/// Exact chunked local steps (DESIGN.md section 3 item 2).
extension HiddenBlock {
    /// Whether the hand-off is worth recomputing rather than keeping: the input is at most a
    /// sixteenth of the hand-off and the weights to freeze are smaller than one image's
    /// hand-off (vgg8b's first block: 784 input values an image against 100,352, 1,152 weights).
    public var handOffIsCheapToRecompute: Bool {
        let perExample = outputShape.reduce(1, *), inputPerExample = map.inputShape(batch: 1).reduce(1, *)
        return 16 * inputPerExample <= perExample && weight.count + 5 * map.outChannels <= perExample
    }

    /// One local step in micro-batches of `chunk` examples, with the same losses, gradients,
    /// update, running statistics and hand-off as `trainLocal` on the whole batch (up to
    /// summation order). The batch reaches the loss only through small summaries, so each pass
    /// walks the chunks, recomputing the block's forward for the chunk:
    /// 1. z = map(x) per chunk; BatchNorm moments -> the batch's mean and invStd (running
    ///    statistics updated once);
    /// 2. h per chunk, normalised with the batch's statistics; the heads' summaries
    ///    (`ChunkedHeads`) gathered;
    /// 3. the losses on the summaries -> their gradients; per chunk dh from them, through the
    ///    nonlinearity, accumulating BatchNorm's backward sums (and the head weights' gradients);
    /// 4. per chunk dh again, dz with the batch's sums, the map's gradients accumulated;
    ///    maxpool(dropout(h)) (or dropout(h)) written into the hand-off with the batch's mask
    ///    for these rows.
    /// Then the block's optimizer step. Live activations: the input and the hand-off, the
    /// summaries and four chunk buffers (z/x-hat, h, dh, a feature map's sim output).
    ///
    /// `source` may be the previous block's `RecomputedHandOff`: its rows are recomputed into a
    /// (chunk, in...) buffer whenever a pass reads them. With `recomputeHandOff` this block's
    /// own hand-off is returned that way, not written (the next block must read it in chunks:
    /// `Network` asks for it only before another chunked conv block). With `writeHandOff` false
    /// (greedy schedule, before the last round: no block reads it) there is none (nil).
    /// `source` may also be a `FrozenPrefix`: its rows are recomputed the same way, through the
    /// frozen blocks before this one.
    public func trainLocalChunked(_ source: ChunkedHandOff, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                                  chunk: Int, recomputeHandOff: Bool, writeHandOff: Bool = true) -> (handOff: ChunkedHandOff?, stats: BlockStepStats) {
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        precondition(chunk > 0, "chunk size must be positive")
        ledger.enter(.forward, layer: index, label: "forward")
        let batch = source.rowCount, channels = map.outChannels, spatial = map.outSpatial
        let chunks = stride(from: 0, to: batch, by: chunk).map { $0..<min($0 + chunk, batch) }
        let chunkShape = map.outputShape(batch: chunk)
        // The input of examples `rows`: a view, or recomputed into one chunk's buffer.
        var inputChunk: Tensor?, inputScratch: Tensor?
        if case .recomputed(let r) = source {
            inputChunk = Tensor(map.inputShape(batch: chunk), .activations, layer: index, label: "input chunk", ledger: ledger, zeroed: false)
            if r.poolAfter {
                inputScratch = Tensor(r.map.outputShape(batch: chunk), .activations, layer: r.layer, label: "h", ledger: ledger, zeroed: false)
            }
        }
        if case .frozenPrefix = source {
            inputChunk = Tensor(map.inputShape(batch: chunk), .activations, layer: index, label: "input chunk", ledger: ledger, zeroed: false)
        }
        let wholeInput: Tensor? = { if case .tensor(let x) = source { return x.reshaped(map.inputShape(batch: batch)) }; return nil }()
        func input(_ rows: Range<Int>) -> Tensor {
            if let wholeInput { return wholeInput.rows(rows) }
            let out = inputChunk!.rows(0..<rows.count)
            switch source {
            case .recomputed(let r): r.materialize(rows: rows, into: out, scratch: inputScratch?.rows(0..<rows.count))
            case .frozenPrefix(let f): f.materialize(rows: rows, into: out)
            case .tensor: preconditionFailure()
            }
            return out
        }

        // Lifetimes are explicit (scopes ending at a last use), so that debug and release builds
        // book the same bytes at the same points: the chunk buffers, the statistics, dh and the
        // backward sums go when pass 4 ends, the summaries just before, all before the update;
        // only the hand-off outlives the step.
        var handOff: ChunkedHandOff?
        var stats = BlockStepStats()
        do {
            // One chunk's z (becoming x-hat) and h, reused by every pass.
            let xhat = Tensor(chunkShape, .activations, layer: index, label: "z chunk", ledger: ledger, zeroed: false)
            let h = Tensor(chunkShape, .activations, layer: index, label: "h chunk", ledger: ledger, zeroed: false)
            let mean = Tensor([channels], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
            let invStd = Tensor([channels], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
            do {
                let moments = TrackedBuffer<Double>(count: 2 * channels, category: .workspace, layer: index, label: "bn.moments", ledger: ledger)
                moments.buffer.update(repeating: 0)
                for rows in chunks {
                    let z = xhat.rows(0..<rows.count)
                    map.forward(x: input(rows), weight: weight.value, bias: bias.value, into: z)
                    BatchNormKernel.accumulateMoments(z: z, channels: channels, into: moments)
                }
                BatchNormKernel.finishMoments(moments, channels: channels, count: batch * spatial, runningMean: runningMean,
                                              runningVar: runningVar, mean: mean, invStd: invStd)
            }
            // h of examples `rows` (pre-dropout) into the chunk buffers, x-hat beside it, and the
            // input they came from.
            func recompute(_ rows: Range<Int>) -> (x: Tensor, xhat: Tensor, h: Tensor) {
                let x = input(rows), xc = xhat.rows(0..<rows.count), hc = h.rows(0..<rows.count)
                map.forward(x: x, weight: weight.value, bias: bias.value, into: xc)
                BatchNormKernel.normalize(z: xc, channels: channels, mean: mean, invStd: invStd,
                                          gamma: bnWeight.value, beta: bnBias.value, out: hc)
                nonlinearity.forward(hc)
                return (x, xc, hc)
            }

            var summaries: ChunkedHeads<Map>? = ChunkedHeads(heads, batch: batch, chunk: chunk, ledger: ledger)
            for rows in chunks {
                let (_, _, hc) = recompute(rows)
                summaries!.gather(h: hc, rows: rows)
            }

            ledger.enter(.localLoss, layer: index, label: "localLoss")
            let (pred, sim) = summaries!.loss(labels: labels, beta: beta)
            stats = BlockStepStats(predLoss: pred.loss, simLoss: sim.loss)
            if let correct = pred.correct { stats.wrong = batch - correct }

            ledger.enter(.backward, layer: index, label: "backward")
            do {
                let dh = Tensor(chunkShape, .activationGrads, layer: index, label: "dh chunk", ledger: ledger, zeroed: false)
                // dL/d(BN output) of examples `rows`: the heads' gradient through the nonlinearity.
                func headGradient(_ rows: Range<Int>, weightGradients: Bool) -> (x: Tensor, xhat: Tensor, dy: Tensor) {
                    let (x, xc, hc) = recompute(rows)
                    let dc = dh.rows(0..<rows.count)
                    dc.fill(0)
                    summaries!.backward(h: hc, rows: rows, into: dc, weightGradients: weightGradients)
                    nonlinearity.backward(output: hc, grad: dc)
                    return (x, xc, dc)
                }
                let sums = TrackedBuffer<Double>(count: 2 * channels, category: .workspace, layer: index, label: "bn.grad sums", ledger: ledger)
                sums.buffer.update(repeating: 0)
                for rows in chunks {
                    let (_, xc, dy) = headGradient(rows, weightGradients: true)
                    BatchNormKernel.accumulateGradientSums(grad: dy, xhat: xc, channels: channels, into: sums)
                }
                let gammaGrad = bnWeight.makeGrad().pointer, betaGrad = bnBias.makeGrad().pointer
                for c in 0..<channels {
                    betaGrad[c] = Float(sums.pointer[c])
                    gammaGrad[c] = Float(sums.pointer[channels + c])
                }
                let weightGrad = weight.makeGrad(), biasGrad = bias.makeGrad()
                // The hand-off is written by the last pass (the weights are still those of the forward),
                // so it does not coexist with the loss's temporaries.
                let output: Tensor? = recomputeHandOff || !writeHandOff ? nil
                    : Tensor([batch] + outputShape, .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
                for rows in chunks {
                    let (x, xc, dz) = headGradient(rows, weightGradients: false)
                    BatchNormKernel.inputGradient(grad: dz, xhat: xc, channels: channels, gamma: bnWeight.value, invStd: invStd,
                                                  sums: sums, count: batch * spatial)
                    map.backwardWeights(dy: dz, x: x, weightGrad: weightGrad, biasGrad: biasGrad, accumulate: rows.lowerBound > 0)
                    // maxpool(dropout(h)) of the chunk, with the batch's mask for these rows; h of
                    // the chunk is recomputed by every pass, so dropout works on it in place.
                    guard let output else { continue }
                    let hc = h.rows(0..<rows.count)
                    Dropout.apply(hc, p: dropout, seed: dropoutSeed, channelSize: spatial, firstGroup: rows.lowerBound * channels)
                    if poolAfter {
                        MaxPoolKernel.forward(x: hc, into: output.rows(rows))
                    } else {
                        output.rows(rows).copy(from: hc)
                    }
                }
                if let output {
                    handOff = .tensor(output)
                } else if writeHandOff {
                    guard case .tensor(let x) = source else { preconditionFailure("a recomputed hand-off needs its input as a tensor") }
                    handOff = .recomputed(RecomputedHandOff(block: self, input: x, mean: mean, invStd: invStd, dropoutSeed: dropoutSeed))
                }
            }
            summaries = nil
            withExtendedLifetime((xhat, h, mean, invStd)) {}
            inputChunk = nil
            inputScratch = nil
        }

        ledger.enter(.update, layer: index, label: "update")
        optimizer.step(lr: lr)
        for p in localParameters { p.dropGrad() }
        return (handOff, stats)
    }
}
