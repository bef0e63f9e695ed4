import MemoryLedger
import Tensors

/// Exact chunked local steps for Linear blocks (DESIGN.md section 3 item 2).
extension LinearBlock {
    /// One local step in micro-batches of `chunk` examples, with the same losses, gradients,
    /// update, running statistics and hand-off as `trainLocal` on the whole batch (up to
    /// summation order). The batch reaches the loss only through small summaries, so each pass
    /// walks the chunks, recomputing the block's forward for the chunk:
    /// 1. z = x W^T + b per chunk; BatchNorm moments -> the batch's mean and invStd (running
    ///    statistics updated once);
    /// 2. h per chunk, normalised with the batch's statistics; the heads' summaries (logits,
    ///    sim features) gathered;
    /// 3. the losses on the summaries -> their gradients; per chunk dh from them, through the
    ///    nonlinearity, accumulating BatchNorm's backward sums (and the head weights' gradients);
    /// 4. per chunk dh again, dz with the batch's sums, dW and db accumulated; dropout(h)
///    written into the hand-off (the batch's mask for these rows).
    /// Then the block's optimizer step. Live activations: the input and the hand-off (B, F),
    /// the summaries (at most (B, F) for the sim heads) and three (chunk, F) buffers.
    func trainLocalChunked(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                           chunk: Int) -> (handOff: Tensor, stats: BlockStepStats) {
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        precondition(chunk > 0, "chunk size must be positive")
        let batch = x.rowCount, features = outFeatures
        let input = x.reshaped([batch, inFeatures])
        let chunks = stride(from: 0, to: batch, by: chunk).map { $0..<min($0 + chunk, batch) }

        ledger.enter(.forward, layer: index, label: "forward")
        // Lifetimes are explicit (scopes ending at a last use), so that debug and release builds
        // book the same bytes at the same points: the chunk buffers, the statistics, dh and the
        // backward sums go when pass 4 ends, the summaries just before, all before the update.
        let handOff: Tensor
        var stats = BlockStepStats()
        do {
            // One chunk's z (becoming x-hat) and h, reused by every pass.
            let xhat = Tensor([chunk, features], .activations, layer: index, label: "z chunk", ledger: ledger, zeroed: false)
            let h = Tensor([chunk, features], .activations, layer: index, label: "h chunk", ledger: ledger, zeroed: false)
            let mean = Tensor([features], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
            let invStd = Tensor([features], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
            do {
                let moments = TrackedBuffer<Double>(count: 2 * features, category: .workspace, layer: index, label: "bn.moments", ledger: ledger)
                moments.buffer.update(repeating: 0)
                for rows in chunks {
                    let z = xhat.rows(0..<rows.count)
                    LinearKernel.forward(x: input.rows(rows), weight: weight.value, bias: bias.value, into: z)
                    BatchNormKernel.accumulateMoments(z: z, channels: features, into: moments)
                }
                BatchNormKernel.finishMoments(moments, channels: features, count: batch, runningMean: runningMean,
                                              runningVar: runningVar, mean: mean, invStd: invStd)
            }
            // h of rows `rows` (pre-dropout) into the chunk buffers, x-hat beside it.
            func recompute(_ rows: Range<Int>) -> (xhat: Tensor, h: Tensor) {
                let xc = xhat.rows(0..<rows.count), hc = h.rows(0..<rows.count)
                LinearKernel.forward(x: input.rows(rows), weight: weight.value, bias: bias.value, into: xc)
                BatchNormKernel.normalize(z: xc, channels: features, mean: mean, invStd: invStd,
                                          gamma: bnWeight.value, beta: bnBias.value, out: hc)
                nonlinearity.forward(hc)
                return (xc, hc)
            }

            var summaries: ChunkedLocalHeads? = ChunkedLocalHeads(heads, batch: batch, ledger: ledger)
            for rows in chunks {
                let (_, hc) = recompute(rows)
                summaries!.gather(h: hc, rows: rows)
            }

            ledger.enter(.localLoss, layer: index, label: "localLoss")
            let (pred, sim) = summaries!.loss(labels: labels, beta: beta)
            stats = BlockStepStats(predLoss: pred.loss, simLoss: sim.loss)
            if let correct = pred.correct { stats.wrong = batch - correct }

            ledger.enter(.backward, layer: index, label: "backward")
            do {
                let dh = Tensor([chunk, features], .activationGrads, layer: index, label: "dh chunk", ledger: ledger, zeroed: false)
                // dL/dz of rows `rows` before BatchNorm's backward: the heads' gradient through f.
                func headGradient(_ rows: Range<Int>, weightGradients: Bool) -> (xhat: Tensor, dy: Tensor) {
                    let (xc, hc) = recompute(rows)
                    let dc = dh.rows(0..<rows.count)
                    dc.fill(0)
                    summaries!.backward(h: hc, rows: rows, into: dc, weightGradients: weightGradients)
                    nonlinearity.backward(output: hc, grad: dc)
                    return (xc, dc)
                }
                let sums = TrackedBuffer<Double>(count: 2 * features, category: .workspace, layer: index, label: "bn.grad sums", ledger: ledger)
                sums.buffer.update(repeating: 0)
                for rows in chunks {
                    let (xc, dy) = headGradient(rows, weightGradients: true)
                    BatchNormKernel.accumulateGradientSums(grad: dy, xhat: xc, channels: features, into: sums)
                }
                let gammaGrad = bnWeight.makeGrad().pointer, betaGrad = bnBias.makeGrad().pointer
                for c in 0..<features {
                    betaGrad[c] = Float(sums.pointer[c])
                    gammaGrad[c] = Float(sums.pointer[features + c])
                }
                let weightGrad = weight.makeGrad(), biasGrad = bias.makeGrad()
                // The hand-off is written by the last pass (the weights are still those of the forward),
                // so it does not coexist with the loss's temporaries.
                handOff = Tensor([batch, features], .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
                for rows in chunks {
                    let (xc, dz) = headGradient(rows, weightGradients: false)
                    BatchNormKernel.inputGradient(grad: dz, xhat: xc, channels: features, gamma: bnWeight.value, invStd: invStd,
                                                  sums: sums, count: batch)
                    LinearKernel.backward(dy: dz, x: input.rows(rows), weight: weight.value, weightGrad: weightGrad,
                                          biasGrad: biasGrad, inputGrad: nil, accumulate: rows.lowerBound > 0)
                    // dropout(h) of the chunk, with the batch's mask for these rows
                    let out = handOff.rows(rows)
                    out.copy(from: h.rows(0..<rows.count))
                    Dropout.apply(out, p: dropout, seed: dropoutSeed, firstGroup: rows.lowerBound * features)
                }
            }
            summaries = nil
            withExtendedLifetime((xhat, h, mean, invStd)) {}
        }

        ledger.enter(.update, layer: index, label: "update")
        optimizer.step(lr: lr)
        for p in localParameters { p.dropGrad() }
        return (handOff, stats)
    }
}
