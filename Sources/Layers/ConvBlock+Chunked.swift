import MemoryLedger
import Tensors

/// Exact chunked local steps for conv blocks (DESIGN.md section 3 item 2).
extension ConvBlock {
    /// One local step in micro-batches of `chunk` images, with the same losses, gradients,
    /// update, running statistics and hand-off as `trainLocal` on the whole batch (up to
    /// summation order). The passes are those of `LinearBlock.trainLocalChunked`, with the conv
    /// in place of the Linear layer and BatchNorm over (B, H, W):
    /// 1. z = conv(x) per chunk; BatchNorm moments -> the batch's mean and invStd;
    /// 2. h per chunk; the heads' summaries (pooled h, sim std) gathered;
    /// 3. the losses on the summaries; per chunk dh (the sim conv recomputed), through the
    ///    nonlinearity, accumulating BatchNorm's backward sums and the sim conv's gradient;
    /// 4. per chunk dh again, dz with the batch's sums, the conv's gradients accumulated;
///    maxpool(dropout(h)) (or dropout(h)) written into the hand-off with the batch's channel
///    mask for these images.
    /// Live activations: the input and the hand-off, the summaries (B x at most dimInDecoder,
    /// B x C) and four (chunk, C, H, W) buffers (z/x-hat, h, dh, the sim conv's chunk).
    ///
    /// `source` may be the previous block's `RecomputedHandOff`: its rows are recomputed into a
    /// (chunk, C_in, H, W) buffer whenever a pass reads them. With `recomputeHandOff` this
    /// block's own hand-off is returned that way, not written (the next block must read it in
    /// chunks: `Network` asks for it only before another chunked conv block).
    func trainLocalChunked(_ x: Tensor, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                           chunk: Int) -> (handOff: Tensor, stats: BlockStepStats) {
        let r = trainLocalChunked(.tensor(x), labels: labels, lr: lr, dropoutSeed: dropoutSeed, chunk: chunk, recomputeHandOff: false)
        return (r.handOff.tensor, r.stats)
    }

    /// Whether the hand-off is worth recomputing rather than keeping: the input is at most a
    /// sixteenth of the hand-off and the weights to freeze are smaller than one image's
    /// hand-off (vgg8b's first block: 784 input values an image against 100,352, 1,152 weights).
    public var handOffIsCheapToRecompute: Bool {
        let perImage = outputShape.reduce(1, *), inputPerImage = geometry.inChannels * geometry.inSpatial
        return 16 * inputPerImage <= perImage && weight.count + 5 * geometry.outChannels <= perImage
    }

    public func trainLocalChunked(_ source: ChunkedHandOff, labels: UnsafePointer<Int32>, lr: Float, dropoutSeed: UInt64,
                                  chunk: Int, recomputeHandOff: Bool) -> (handOff: ChunkedHandOff, stats: BlockStepStats) {
        guard let heads, let optimizer else { preconditionFailure("block \(index) is not set up for local training") }
        precondition(chunk > 0, "chunk size must be positive")
        ledger.enter(.forward, layer: index, label: "forward")
        let batch = source.rowCount, channels = geometry.outChannels, spatial = geometry.outSpatial
        let chunks = stride(from: 0, to: batch, by: chunk).map { $0..<min($0 + chunk, batch) }
        let chunkShape = geometry.outputShape(batch: chunk)
        // The input of images `rows`: a view, or recomputed into one chunk's buffer.
        var inputChunk: Tensor?, inputScratch: Tensor?
        if case .recomputed(let r) = source {
            inputChunk = Tensor([chunk, geometry.inChannels, geometry.height, geometry.width], .activations, layer: index,
                                label: "input chunk", ledger: ledger, zeroed: false)
            if r.poolAfter {
                inputScratch = Tensor(r.geometry.outputShape(batch: chunk), .activations, layer: r.layer, label: "h",
                                      ledger: ledger, zeroed: false)
            }
        }
        let wholeInput: Tensor? = { if case .tensor(let x) = source { return x.reshaped(geometry.inputShape(batch: batch)) }; return nil }()
        func input(_ rows: Range<Int>) -> Tensor {
            if let wholeInput { return wholeInput.rows(rows) }
            guard case .recomputed(let r) = source else { preconditionFailure() }
            let out = inputChunk!.rows(0..<rows.count)
            r.materialize(rows: rows, into: out, scratch: inputScratch?.rows(0..<rows.count))
            return out
        }

        // Explicit lifetimes as in `LinearBlock.trainLocalChunked`: everything but the hand-off
        // goes before the update.
        var handOff: ChunkedHandOff?
        var stats = BlockStepStats()
        do {
            let xhat = Tensor(chunkShape, .activations, layer: index, label: "z chunk", ledger: ledger, zeroed: false)
            let h = Tensor(chunkShape, .activations, layer: index, label: "h chunk", ledger: ledger, zeroed: false)
            let mean = Tensor([channels], .activations, layer: index, label: "bn.mean", ledger: ledger, zeroed: false)
            let invStd = Tensor([channels], .activations, layer: index, label: "bn.invstd", ledger: ledger, zeroed: false)
            do {
                let moments = TrackedBuffer<Double>(count: 2 * channels, category: .workspace, layer: index, label: "bn.moments", ledger: ledger)
                moments.buffer.update(repeating: 0)
                for rows in chunks {
                    let z = xhat.rows(0..<rows.count)
                    Conv2dKernel.forward(x: input(rows), weight: weight.value, bias: bias.value, into: z, workspace: workspace)
                    BatchNormKernel.accumulateMoments(z: z, channels: channels, into: moments)
                }
                BatchNormKernel.finishMoments(moments, channels: channels, count: batch * spatial, runningMean: runningMean,
                                              runningVar: runningVar, mean: mean, invStd: invStd)
            }
            // h of images `rows` (pre-dropout) into the chunk buffers, x-hat beside it, and the
            // input they came from.
            func recompute(_ rows: Range<Int>) -> (x: Tensor, xhat: Tensor, h: Tensor) {
                let x = input(rows), xc = xhat.rows(0..<rows.count), hc = h.rows(0..<rows.count)
                Conv2dKernel.forward(x: x, weight: weight.value, bias: bias.value, into: xc, workspace: workspace)
                BatchNormKernel.normalize(z: xc, channels: channels, mean: mean, invStd: invStd,
                                          gamma: bnWeight.value, beta: bnBias.value, out: hc)
                nonlinearity.forward(hc)
                return (x, xc, hc)
            }

            var summaries: ChunkedConvHeads? = ChunkedConvHeads(heads, batch: batch, chunk: chunk, ledger: ledger)
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
                // dL/d(BN output) of images `rows`: the heads' gradient through the nonlinearity.
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
                let output: Tensor? = recomputeHandOff ? nil
                    : Tensor([batch] + outputShape, .activations, layer: index, label: "handoff", ledger: ledger, zeroed: false)
                for rows in chunks {
                    let (x, xc, dz) = headGradient(rows, weightGradients: false)
                    BatchNormKernel.inputGradient(grad: dz, xhat: xc, channels: channels, gamma: bnWeight.value, invStd: invStd,
                                                  sums: sums, count: batch * spatial)
                    Conv2dKernel.backwardWeights(dy: dz, x: x, weightGrad: weightGrad, biasGrad: biasGrad,
                                                 workspace: workspace, accumulate: rows.lowerBound > 0)
                    // maxpool(dropout(h)) of the chunk, with the batch's channel mask for these images; h of
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
                } else {
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
        return (handOff!, stats)
    }
}
