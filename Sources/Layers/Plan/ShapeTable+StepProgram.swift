import MemoryLedger
import Tensors

/// The step programs: what `Network.trainStep` books and frees, in its order, from the table's
/// shapes alone. Each function names the code it follows; a change there changes the ledger and
/// the planner tests (Tests/TrainingTests/ShapeTablePlanTests.swift) compare the two byte for byte.
extension ShapeTable {
    /// The program of one training step at `batch` (local mode for a local loss, backprop for
    /// `.backprop`), in micro-batches of `chunk` when it is smaller than the batch (local mode).
    public func stepProgram(batch: Int, chunk: Int? = nil, optimizer: OptimizerSettings = OptimizerSettings()) -> StepProgram {
        precondition(batch > 0, "batch must be positive")
        let chunked = spec.loss.isLocal ? chunk.flatMap { $0 < batch ? $0 : nil } : nil
        var p = StepProgram(batch: batch, chunk: chunked)
        p.mark(.stepBegins)
        if !spec.loss.isLocal {
            backpropStep(&p, batch: batch)
        } else if let c = chunked {
            localChunkedStep(&p, batch: batch, chunk: c)
        } else {
            localStep(&p, batch: batch)
        }
        p.prepend(persistent(batch: batch, optimizer: optimizer, convCalls: p.convCalls))
        return p
    }

    /// What lives for the whole run, in `Network.init`'s order, then the input batch: weights,
    /// heads, optimizer moments, the shared conv scratch (oneDNN's is booked at the first call of
    /// its largest primitive and kept: the step's peak sees it whole).
    func persistent(batch: Int, optimizer: OptimizerSettings, convCalls: Set<StepProgram.ConvCall>) -> [PlannedEvent] {
        var e: [PlannedEvent] = []
        func book(_ name: String, _ c: Category, _ layer: Int?, _ bytes: Int) {
            guard bytes > 0 else { return }
            e.append(.allocate(name: name, category: c, layer: layer, bytes: bytes))
        }
        let local = spec.loss.isLocal
        let f = MemoryLayout<Float>.stride
        for l in layers {
            book("\(l.index).weights", .weights, l.index, f * l.weightElements)
            if local { book("\(l.index).heads", .headWeights, l.index, f * l.headElements) }
            book("\(l.index).optimizer", .optimizerState, l.index, optimizerStateBytes(l, optimizer: optimizer))
        }
        book("conv workspace", .workspace, nil, im2colWorkspaceBytes)
        book("conv dnnl workspace", .workspace, nil, ShapeTable.dnnlWorkspaceBytes(convCalls))
        book("input", .input, nil, f * batch * spec.inputFeatures)
        return e
    }

    /// The shared oneDNN workspace after a step has made every primitive it uses: the largest
    /// `DNNLConvolution.workspaceBytes` among them (`DNNLConvolutionCache`), asked of oneDNN for
    /// this machine's ISA and thread count.
    public static func dnnlWorkspaceBytes(_ calls: Set<StepProgram.ConvCall>) -> Int {
        var largest = 0
        for c in calls {
            guard let conv = try? DNNLConvolution(c.pass, geometry: c.geometry, batch: c.batch, withBias: c.withBias, engine: c.engine) else {
                preconditionFailure("oneDNN cannot make \(c.pass.rawValue) of \(c.geometry) at batch \(c.batch)")
            }
            largest = max(largest, conv.workspaceBytes)
        }
        return largest
    }

    /// The name of layer `index`'s input: the batch, or the previous block's hand-off.
    func inputName(_ index: Int) -> String { index == 0 ? "input" : "\(index - 1).handoff" }

    /// Records a conv call for the oneDNN workspace (im2col's and Winograd's scratch is fixed).
    func conv(_ p: inout StepProgram, _ pass: ConvPass, _ g: ConvGeometry, _ n: Int, bias: Bool) {
        if engine.usesDNNL(g, pass), n > 0 { p.conv(pass, g, batch: n, bias: bias, engine: engine) }
    }

    private func simGeometry(_ l: Layer) -> ConvGeometry {
        let g = l.geometry!
        return ConvGeometry(inChannels: g.outChannels, outChannels: g.outChannels, height: g.height, width: g.width)
    }

    /// Sizes of the micro-batches of `batch` in steps of `chunk` (the last may be smaller).
    private func chunkSizes(_ batch: Int, _ chunk: Int) -> Set<Int> {
        Set(stride(from: 0, to: batch, by: chunk).map { min(chunk, batch - $0) })
    }

    /// `LocalHeads.usesStd` for the block's h.
    private func simUsesStd(_ l: Layer) -> Bool { l.kind == .conv && l.output[0] > 3 && l.output[1] > 1 }

    private var learnedSim: Bool { spec.loss.usesSim && !spec.loss.isBackpropFree }
    private var readsDecoderFeatures: Bool { spec.loss.usesPred || (spec.loss.usesSim && spec.loss.isBackpropFree) }
    private func decoderFeatures(_ l: Layer) -> Int { l.pooling?.features ?? l.outputCount }
    private func headPools(_ l: Layer) -> Bool { l.pooling?.pools ?? false }

    // MARK: local step (Network.trainStep, HiddenBlock.trainLocal, LocalHeads.apply, OutputLayer.train)

    private func localStep(_ p: inout StepProgram, batch b: Int) {
        for l in hiddenLayers {
            p.mark(.layerBegins(l.index))
            localBlock(&p, l, batch: b)
            if l.index > 0 { p.free(inputName(l.index)) }  // the caller drops the block's input
        }
        outputLocal(&p, batch: b)
    }

    // HiddenBlock.trainLocal
    func localBlock(_ p: inout StepProgram, _ l: Layer, batch b: Int) {
        let k = "\(l.index).", n = b * l.outputCount
        let hName = l.poolAfter ? k + "h" : k + "handoff"  // h becomes the hand-off in place unless pooled
        mapAndNorm(&p, l, batch: b, h: hName)
        p.allocate(k + "dh", .activationGrads, layer: l.index, floats: n)
        heads(&p, l, batch: b, h: hName)
        normAndMapBackward(&p, l, batch: b)
        p.free(k + "dh")
        // update: every gradient of the block and its heads is dropped
        p.freeAll(prefix: "grad." + k)
        if l.poolAfter {
            p.allocate(k + "handoff", .activations, layer: l.index, floats: b * l.handOffCount)
            p.free(k + "h")
        }
    }

    // HiddenBlock.mapAndNorm: z (becomes x-hat), h, invStd; the batch mean only inside BatchNorm
    private func mapAndNorm(_ p: inout StepProgram, _ l: Layer, batch b: Int, h: String) {
        let k = "\(l.index).", n = b * l.outputCount, c = l.channels
        p.allocate(k + "xhat", .activations, layer: l.index, floats: n)
        p.allocate(h, .activations, layer: l.index, floats: n)
        p.allocate(k + "invStd", .activations, layer: l.index, floats: c)
        p.allocate(k + "mean", .activations, layer: l.index, floats: c)
        p.free(k + "mean")
        if let g = l.geometry {
            conv(&p, .forward, g, b, bias: true)
            conv(&p, .backwardWeights, g, b, bias: true)  // the backward that follows in either mode
        }
    }

    // HiddenBlock.backward after the nonlinearity: BN gradients and scratch; x-hat and invStd
    // go; the map's gradients (the input gradient is the caller's)
    private func normAndMapBackward(_ p: inout StepProgram, _ l: Layer, batch b: Int) {
        let k = "\(l.index).", c = l.channels
        p.allocate("grad." + k + "bn.weight", .gradients, layer: l.index, floats: c)
        p.allocate("grad." + k + "bn.bias", .gradients, layer: l.index, floats: c)
        p.allocate(k + "bn.scratch", .workspace, layer: l.index, floats: 2 * c)
        p.free(k + "bn.scratch", k + "xhat", k + "invStd")
        p.allocate("grad." + k + "weight", .gradients, layer: l.index, floats: l.params - 3 * c)
        p.allocate("grad." + k + "bias", .gradients, layer: l.index, floats: c)
    }

    // LocalHeads.apply
    private func heads(_ p: inout StepProgram, _ l: Layer, batch b: Int, h: String) {
        let k = "\(l.index)."
        if readsDecoderFeatures {
            let pools = headPools(l)
            if pools {
                p.allocate(k + "pred.pooled", .activations, layer: l.index, floats: b * decoderFeatures(l))
                p.allocate(k + "pred.pooled.grad", .activationGrads, layer: l.index, floats: b * decoderFeatures(l))
            }
            decoderHeads(&p, l, batch: b, pooledIsMap: pools ? (l.pooling!.outHeight, l.pooling!.channels) : (l.kind == .conv ? (l.output[1], l.output[0]) : nil))
            if pools { p.free(k + "pred.pooled", k + "pred.pooled.grad") }
        }
        guard learnedSim else { return }
        let sg: ConvGeometry? = l.kind == .conv ? simGeometry(l) : nil
        similarityTarget(&p, l, batch: b, projected: false)
        if simUsesStd(l), let sg {
            // simChunked: s a chunk of images at a time, reduced to its std (s whole when kept)
            let group = imagesPerGemm(sg)
            let chunk = min(b, max(group, 16 / group * group))
            p.allocate(k + "sim.std", .activations, layer: l.index, floats: b * l.channels)
            p.allocate(k + "sim.s", .activations, layer: l.index, floats: (keepsSimOutput ? b : chunk) * l.outputCount)
            for n in chunkSizes(b, chunk) {
                conv(&p, .forward, sg, n, bias: false)
                conv(&p, .backwardWeights, sg, n, bias: false)
                conv(&p, .backwardData, sg, n, bias: false)
            }
            similarityLoss(&p, l, batch: b, width: l.channels, featuresFreed: nil)
            p.allocate("grad." + k + "sim.weight", .gradients, layer: l.index, floats: l.channels * l.channels * 9)
            p.free(k + "sim.std", k + "sim.s", k + "sim.grad")
        } else {
            // simWhole: s (the map's output) freed once normalised
            p.allocate(k + "sim.features", .activations, layer: l.index, floats: b * l.outputCount)
            if let sg {
                conv(&p, .forward, sg, b, bias: false)
                conv(&p, .backwardWeights, sg, b, bias: false)
                conv(&p, .backwardData, sg, b, bias: false)
            }
            similarityLoss(&p, l, batch: b, width: l.outputCount, featuresFreed: k + "sim.features")
            p.allocate("grad." + k + "sim.weight", .gradients, layer: l.index,
                       floats: l.kind == .conv ? l.channels * l.channels * 9 : l.channels * l.channels)
            p.free(k + "sim.grad")
        }
    }

    // LocalHeads.decoderHeads on the decoder features (B, features); `pooledIsMap` gives
    // (height, channels) of them when they are a feature map (for the std test of sim-bpf).
    private func decoderHeads(_ p: inout StepProgram, _ l: Layer, batch b: Int, pooledIsMap: (height: Int, channels: Int)?) {
        let k = "\(l.index).", features = decoderFeatures(l), proj = LossKind.projectionSize
        let loss = spec.loss
        if loss.usesPred && !loss.isBackpropFree {
            p.allocate(k + "pred.logits", .activations, layer: l.index, floats: b * spec.classes)
            p.allocate("grad." + k + "pred.weight", .gradients, layer: l.index, floats: spec.classes * features)
            p.allocate("grad." + k + "pred.bias", .gradients, layer: l.index, floats: spec.classes)
            p.free(k + "pred.logits")
        }
        if loss.usesPred && loss.isBackpropFree {
            p.allocate(k + "bpf.logits", .activations, layer: l.index, floats: b * proj)
            p.allocate(k + "bpf.target", .lossTemp, layer: l.index, floats: b * proj)
            p.free(k + "bpf.target")
            p.allocate("grad." + k + "decoder.weight", .gradients, layer: l.index, floats: proj * features)
            p.allocate("grad." + k + "decoder.bias", .gradients, layer: l.index, floats: proj)
            p.free(k + "bpf.logits")
        }
        if loss.usesSim && loss.isBackpropFree {
            similarityTarget(&p, l, batch: b, projected: true)
            if let map = pooledIsMap, map.channels > 3 && map.height > 1 {
                // simThroughStd: the std of the decoder features
                p.allocate(k + "sim.std", .activations, layer: l.index, floats: b * map.channels)
                similarityLoss(&p, l, batch: b, width: map.channels, featuresFreed: nil)
                p.free(k + "sim.std", k + "sim.grad")
            } else {
                similarityLoss(&p, l, batch: b, width: features, featuresFreed: nil)
                p.free(k + "sim.grad")
            }
        }
    }

    // SimilarityLoss.target: the labels (one-hot, or projected), their normalisation scratch, S
    private func similarityTarget(_ p: inout StepProgram, _ l: Layer, batch b: Int, projected: Bool) {
        let k = "\(l.index).", width = projected ? LossKind.projectionSize : spec.classes
        p.allocate(k + "sim.y", .lossTemp, layer: l.index, floats: b * width)
        p.allocate(k + "sim.target.u", .lossTemp, layer: l.index, floats: b * width)
        p.allocate(k + "sim.target.norms", .lossTemp, layer: l.index, floats: b)
        p.allocate(k + "sim.target", .lossTemp, layer: l.index, floats: b * b)
        p.free(k + "sim.y", k + "sim.target.u", k + "sim.target.norms")
    }

    // SimilarityLoss.lossAndGrad on (B, width) features: leaves "k.sim.grad" (B, width) live and
    // frees the target; `featuresFreed` is the features' buffer when only the loss held it.
    private func similarityLoss(_ p: inout StepProgram, _ l: Layer, batch b: Int, width: Int, featuresFreed: String?) {
        let k = "\(l.index)."
        p.allocate(k + "sim.u", .activations, layer: l.index, floats: b * width)
        p.allocate(k + "sim.norms", .activations, layer: l.index, floats: b)
        p.allocate(k + "sim.matrix", .lossTemp, layer: l.index, floats: b * b)
        if let featuresFreed { p.free(featuresFreed) }
        p.free(k + "sim.target")
        p.allocate(k + "sim.grad", .activationGrads, layer: l.index, floats: b * width)
        p.free(k + "sim.u", k + "sim.norms", k + "sim.matrix")
    }

    // OutputLayer.train in local mode, then the caller's update
    func outputLocal(_ p: inout StepProgram, batch b: Int) {
        let l = outputLayer, k = "\(l.index)."
        p.mark(.layerBegins(l.index))
        p.allocate(k + "logits", .activations, layer: l.index, floats: b * spec.classes)
        p.allocate("grad." + k + "weight", .gradients, layer: l.index, floats: spec.classes * l.inputCount)
        p.allocate("grad." + k + "bias", .gradients, layer: l.index, floats: spec.classes)
        p.free(k + "logits")
        if l.index > 0 { p.free(inputName(l.index)) }
        p.freeAll(prefix: "grad." + k)
    }

    // MARK: chunked local step (Network.trainStep with chunkSize, HiddenBlock.trainLocalChunked, ChunkedHeads)

    private func localChunkedStep(_ p: inout StepProgram, batch b: Int, chunk c: Int) {
        let convs = convLayers
        var recomputedInput: Layer?  // the previous block, when its hand-off is a recipe
        for (i, l) in hiddenLayers.enumerated() {
            p.mark(.layerBegins(l.index))
            let recompute = l.kind == .conv && i + 1 < convs.count && handOffIsCheapToRecompute(l)
            chunkedBlock(&p, l, batch: b, chunk: c, source: recomputedInput, recomputeHandOff: recompute)
            // The caller drops the block's input: a tensor hand-off, or a recipe (which held
            // its own input, the block before's hand-off, until now).
            if let r = recomputedInput {
                p.free("\(r.index).handoff.recipe")
                if r.index > 0 { p.free(inputName(r.index)) }
            } else if l.index > 0 && !(recompute) {
                p.free(inputName(l.index))
            }
            recomputedInput = recompute ? l : nil
        }
        outputLocal(&p, batch: b)
    }

    /// `HiddenBlock.handOffIsCheapToRecompute`.
    func handOffIsCheapToRecompute(_ l: Layer) -> Bool {
        16 * l.inputCount <= l.handOffCount && (l.params - 3 * l.channels) + 5 * l.channels <= l.handOffCount
    }

    // HiddenBlock.trainLocalChunked
    // `frozenPrefix`: the greedy schedule's input recomputed a chunk at a time through the frozen
    // blocks before l (`FrozenPrefix`); `writeHandOff` false: no hand-off (greedy, not the last round)
    func chunkedBlock(_ p: inout StepProgram, _ l: Layer, batch b: Int, chunk c: Int, source: Layer?, recomputeHandOff: Bool,
                      frozenPrefix: Bool = false, writeHandOff: Bool = true) {
        let k = "\(l.index).", ch = l.channels, n = c * l.outputCount
        let sizes = chunkSizes(b, c)
        if frozenPrefix {
            p.allocate(k + "input chunk", .activations, layer: l.index, floats: c * l.inputCount)
        }
        if let r = source {
            p.allocate(k + "input chunk", .activations, layer: l.index, floats: c * l.inputCount)
            if r.poolAfter { p.allocate("\(r.index).h scratch", .activations, layer: r.index, floats: c * r.outputCount) }
            for m in sizes { conv(&p, .forward, r.geometry!, m, bias: true) }
        }
        p.allocate(k + "xhat", .activations, layer: l.index, floats: n)
        p.allocate(k + "h", .activations, layer: l.index, floats: n)
        p.allocate(k + "mean", .activations, layer: l.index, floats: ch)
        p.allocate(k + "invStd", .activations, layer: l.index, floats: ch)
        p.allocate(k + "bn.moments", .workspace, layer: l.index, bytes: 2 * ch * MemoryLayout<Double>.stride)
        p.free(k + "bn.moments")
        if let g = l.geometry {
            for m in sizes {
                conv(&p, .forward, g, m, bias: true)
                conv(&p, .backwardWeights, g, m, bias: true)
            }
        }
        let summaries = chunkedHeadsLoss(&p, l, batch: b, summaries: chunkedHeadsInit(&p, l, batch: b, chunk: c))
        p.allocate(k + "dh", .activationGrads, layer: l.index, floats: n)
        p.allocate(k + "bn.grad sums", .workspace, layer: l.index, bytes: 2 * ch * MemoryLayout<Double>.stride)
        // the first backward pass: the head weights' gradients that need h (Linear blocks)
        if l.kind == .linear {
            if spec.loss.usesPred && !spec.loss.isBackpropFree {
                p.allocate("grad." + k + "pred.weight", .gradients, layer: l.index, floats: spec.classes * l.outputCount)
            }
            if spec.loss.usesPred && spec.loss.isBackpropFree {
                p.allocate("grad." + k + "decoder.weight", .gradients, layer: l.index, floats: LossKind.projectionSize * l.outputCount)
            }
        }
        if learnedSim {
            p.allocate("grad." + k + "sim.weight", .gradients, layer: l.index,
                       floats: l.kind == .conv ? ch * ch * 9 : ch * ch)
        }
        p.allocate("grad." + k + "bn.weight", .gradients, layer: l.index, floats: ch)
        p.allocate("grad." + k + "bn.bias", .gradients, layer: l.index, floats: ch)
        p.allocate("grad." + k + "weight", .gradients, layer: l.index, floats: l.params - 3 * ch)
        p.allocate("grad." + k + "bias", .gradients, layer: l.index, floats: ch)
        if recomputeHandOff {
            p.allocate(k + "handoff.recipe", .activations, layer: l.index, floats: l.params - 3 * ch + 5 * ch)
        } else if writeHandOff {
            p.allocate(k + "handoff", .activations, layer: l.index, floats: b * l.handOffCount)
        }
        if frozenPrefix {
            // Every pass reads each chunk through the prefix; the last pass has the most live
            // (everything above is a superset in bytes of what the earlier passes hold), so its
            // full chunk is the spike. Its convolutions run at every chunk size.
            frozenChain(&p, through: l.index, rows: c, output: "frozen chunk")
            p.free("frozen chunk")
            for m in sizes where m != c { for f in hiddenLayers.prefix(l.index) { if let g = f.geometry { conv(&p, .forward, g, m, bias: true) } } }
        }
        p.free(k + "dh", k + "bn.grad sums")
        for name in summaries { p.free(name) }
        p.free(k + "xhat", k + "h", k + "mean", k + "invStd")
        if let r = source {
            p.free(k + "input chunk")
            if r.poolAfter { p.free("\(r.index).h scratch") }
        }
        if frozenPrefix { p.free(k + "input chunk") }
        p.freeAll(prefix: "grad." + k)
    }

    // ChunkedHeads.init: the full-batch summaries; returns the names live after `loss`.
    private func chunkedHeadsInit(_ p: inout StepProgram, _ l: Layer, batch b: Int, chunk c: Int) -> [String] {
        let k = "\(l.index)."
        var names: [String] = []
        if l.kind == .conv {
            if readsDecoderFeatures {
                p.allocate(k + "pred.pooled", .activations, layer: l.index, floats: b * decoderFeatures(l))
            }
        } else {
            if spec.loss.usesPred && !spec.loss.isBackpropFree {
                p.allocate(k + "pred.logits", .activations, layer: l.index, floats: b * spec.classes)
                names.append(k + "pred.logits")
            }
            if spec.loss.usesPred && spec.loss.isBackpropFree {
                p.allocate(k + "bpf.logits", .activations, layer: l.index, floats: b * LossKind.projectionSize)
                names.append(k + "bpf.logits")
            }
            if spec.loss.usesSim && spec.loss.isBackpropFree {
                p.allocate(k + "sim.features", .activations, layer: l.index, floats: b * l.outputCount)
            }
        }
        if learnedSim {
            if simUsesStd(l) {
                p.allocate(k + "sim.std", .activations, layer: l.index, floats: b * l.channels)
                p.allocate(k + "sim.s", .activations, layer: l.index, floats: c * l.outputCount)
                names += [k + "sim.std", k + "sim.s"]
            } else {
                p.allocate(k + "sim.features", .activations, layer: l.index, floats: b * l.outputCount)
            }
            if l.kind == .conv {
                let sg = simGeometry(l)
                for m in chunkSizes(b, c) {
                    conv(&p, .forward, sg, m, bias: false)
                    conv(&p, .backwardWeights, sg, m, bias: false)
                    conv(&p, .backwardData, sg, m, bias: false)
                }
            }
        }
        return names
    }

    // ChunkedHeads.loss; appends what stays live until the step drops the summaries.
    private func chunkedHeadsLoss(_ p: inout StepProgram, _ l: Layer, batch b: Int, summaries names: [String]) -> [String] {
        let k = "\(l.index)."
        var after = names
        if l.kind == .conv && readsDecoderFeatures {
            p.allocate(k + "pred.pooled.grad", .activationGrads, layer: l.index, floats: b * decoderFeatures(l))
            decoderHeads(&p, l, batch: b, pooledIsMap: headPools(l) ? (l.pooling!.outHeight, l.pooling!.channels) : (l.output[1], l.output[0]))
            p.free(k + "pred.pooled")
            after.append(k + "pred.pooled.grad")
        }
        if l.kind == .linear && spec.loss.usesPred && !spec.loss.isBackpropFree {
            p.allocate("grad." + k + "pred.bias", .gradients, layer: l.index, floats: spec.classes)
        }
        if l.kind == .linear && spec.loss.usesPred && spec.loss.isBackpropFree {
            p.allocate(k + "bpf.target", .lossTemp, layer: l.index, floats: b * LossKind.projectionSize)
            p.free(k + "bpf.target")
            p.allocate("grad." + k + "decoder.bias", .gradients, layer: l.index, floats: LossKind.projectionSize)
        }
        let simOnLinearBpf = l.kind == .linear && spec.loss.usesSim && spec.loss.isBackpropFree
        if learnedSim || simOnLinearBpf {
            similarityTarget(&p, l, batch: b, projected: spec.loss.isBackpropFree)
            if learnedSim && simUsesStd(l) {
                similarityLoss(&p, l, batch: b, width: l.channels, featuresFreed: nil)
            } else {
                similarityLoss(&p, l, batch: b, width: l.outputCount, featuresFreed: k + "sim.features")
            }
            after.append(k + "sim.grad")
        }
        return after
    }

    // MARK: backprop step (HiddenBlock.forwardBackprop / backwardBackprop, OutputLayer.train, Network.trainStep)

    private func backpropStep(_ p: inout StepProgram, batch b: Int) {
        for l in hiddenLayers {
            p.mark(.layerBegins(l.index))
            let k = "\(l.index).", n = b * l.outputCount
            mapAndNorm(&p, l, batch: b, h: k + "h")
            if let g = l.geometry, l.index > 0 { conv(&p, .backwardData, g, b, bias: false) }
            // dropout(h) goes to a copy, since the backward needs h; pooled into the hand-off
            if l.poolAfter {
                p.allocate(k + "dropped", .activations, layer: l.index, floats: n)
                p.allocate(k + "handoff", .activations, layer: l.index, floats: b * l.handOffCount)
                p.allocate(k + "argmax", .activations, layer: l.index, bytes: b * l.handOffCount)  // one byte a pooled value
                p.free(k + "dropped")
            } else {
                p.allocate(k + "handoff", .activations, layer: l.index, floats: n)
            }
        }
        // the output layer: logits, dx, its gradients; the last hand-off goes after its backward
        let o = outputLayer, ko = "\(o.index)."
        p.mark(.layerBegins(o.index))
        p.allocate(ko + "logits", .activations, layer: o.index, floats: b * spec.classes)
        p.allocate(ko + "dx", .activationGrads, layer: o.index, floats: b * o.inputCount)
        p.allocate("grad." + ko + "weight", .gradients, layer: o.index, floats: spec.classes * o.inputCount)
        p.allocate("grad." + ko + "bias", .gradients, layer: o.index, floats: spec.classes)
        p.free(ko + "logits")
        if o.index > 0 { p.free(inputName(o.index)) }
        for l in hiddenLayers.reversed() {
            let k = "\(l.index).", n = b * l.outputCount
            let incoming = "\(l.index + 1).dx"
            if l.poolAfter {
                p.allocate(k + "dh", .activationGrads, layer: l.index, floats: n)
                p.free(k + "argmax")
            }
            p.free(k + "h")
            normAndMapBackward(&p, l, batch: b)
            if l.index > 0 {
                p.allocate(k + "dx", .activationGrads, layer: l.index, floats: b * l.inputCount)
                p.free(inputName(l.index))  // the block's saved input
            }
            if l.poolAfter { p.free(k + "dh") }
            p.free(incoming)  // the gradient it received, dropped when it returns
        }
        p.freeAll(prefix: "grad.")
    }
}
