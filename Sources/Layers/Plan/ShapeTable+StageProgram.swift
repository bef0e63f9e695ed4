import MemoryLedger
import Tensors

/// The step program of one pipeline stage (`Network(holding:)` trained through
/// `Network.trainStage`, as `Trainer.runStagedEpoch` runs it): what the stage's network books
/// for the run, then its blocks' local steps, then the output layer's on the last stage.
extension ShapeTable {
    /// The program of stage `blocks`'s training step at `batch` (micro-batches of `chunk` when
    /// it is smaller), with `inFlight` hand-offs kept by the sends that have not completed.
    ///
    /// Its input (the batch on the first stage, the received hand-off on the others) is booked
    /// as `input` for the whole step; a stage that does not end with the output layer keeps
    /// `inFlight` of its hand-offs in its send ring, booked as `activations` of its last block:
    /// the new hand-off takes the oldest one's slot after the step.
    public func stageStepProgram(blocks range: Range<Int>, batch: Int, chunk: Int? = nil,
                                 optimizer: OptimizerSettings = OptimizerSettings(), inFlight: Int = 1) -> StepProgram {
        precondition(spec.loss.isLocal, "stages train local losses")
        precondition(!range.isEmpty && range.lowerBound >= 0 && range.upperBound <= hiddenLayers.count, "blocks \(range)")
        let chunked = chunk.flatMap { $0 < batch ? $0 : nil }
        let held = hiddenLayers.filter { range.contains($0.index) }
        let holdsOutput = range.upperBound == hiddenLayers.count
        let last = held[held.count - 1]
        let convEnd = min(range.upperBound, convLayers.count)
        var p = StepProgram(batch: batch, chunk: chunked)
        p.mark(.stepBegins)
        if let c = chunked {
            var recomputedInput: Layer?
            for l in held {
                p.mark(.layerBegins(l.index))
                let recompute = l.kind == .conv && l.index + 1 < convEnd && handOffIsCheapToRecompute(l)
                chunkedBlock(&p, l, batch: batch, chunk: c, source: recomputedInput, recomputeHandOff: recompute)
                if let r = recomputedInput {
                    p.free("\(r.index).handoff.recipe")
                    if r.index > range.lowerBound { p.free(inputName(r.index)) }
                } else if l.index > range.lowerBound && !recompute {
                    p.free(inputName(l.index))
                }
                recomputedInput = recompute ? l : nil
            }
        } else {
            for l in held {
                p.mark(.layerBegins(l.index))
                localBlock(&p, l, batch: batch)
                if l.index > range.lowerBound { p.free(inputName(l.index)) }
            }
        }
        if holdsOutput {
            outputLocal(&p, batch: batch)
        } else {
            p.free("\(last.index).handoff")  // into the send ring, in place of the oldest
        }
        p.prepend(stagePersistent(range, batch: batch, optimizer: optimizer, convCalls: p.convCalls, inFlight: holdsOutput ? 0 : inFlight))
        return p
    }

    /// What a stage's network holds for the run, in `Network.init`'s order (its blocks' weights,
    /// heads and optimizer state; the output layer's weights on every stage, its optimizer state
    /// on the last; the conv scratch of its convs), then its input and its send ring.
    func stagePersistent(_ range: Range<Int>, batch: Int, optimizer: OptimizerSettings, convCalls: Set<StepProgram.ConvCall>,
                         inFlight: Int) -> [PlannedEvent] {
        var e: [PlannedEvent] = []
        func book(_ name: String, _ c: Category, _ layer: Int?, _ bytes: Int) {
            guard bytes > 0 else { return }
            e.append(.allocate(name: name, category: c, layer: layer, bytes: bytes))
        }
        let f = MemoryLayout<Float>.stride
        let holdsOutput = range.upperBound == hiddenLayers.count
        for l in layers where range.contains(l.index) || l.kind == .output {
            book("\(l.index).weights", .weights, l.index, f * l.weightElements)
            guard l.kind != .output || holdsOutput else { continue }
            book("\(l.index).heads", .headWeights, l.index, f * l.headElements)
            book("\(l.index).optimizer", .optimizerState, l.index, optimizerStateBytes(l, optimizer: optimizer))
        }
        book("conv workspace", .workspace, nil, im2colWorkspaceBytes(convs: convLayers.filter { range.contains($0.index) }))
        book("conv dnnl workspace", .workspace, nil, ShapeTable.dnnlWorkspaceBytes(convCalls))
        let inputFloats = range.lowerBound == 0 ? spec.inputFeatures : layers[range.lowerBound - 1].handOffCount
        book("input", .input, nil, f * batch * inputFloats)
        let last = range.upperBound - 1
        for slot in 0..<inFlight { book("in flight \(slot)", .activations, last, f * batch * layers[last].handOffCount) }
        return e
    }

    /// The conv scratch a network holding `convs` shares (`Network.init`): the first one's
    /// geometry, also serving the others and their learned sim heads.
    func im2colWorkspaceBytes(convs: [Layer]) -> Int {
        guard let first = convs.first?.geometry else { return 0 }
        let rest = convs.dropFirst().map { $0.geometry! }
        let sims = spec.loss.usesSim && !spec.loss.isBackpropFree
            ? convs.map { l in ConvGeometry(inChannels: l.geometry!.outChannels, outChannels: l.geometry!.outChannels,
                                            height: l.geometry!.height, width: l.geometry!.width) } : []
        let own = engine.skipsIm2col(first) ? ConvWorkspace.bytes(first, engine: engine) : ConvWorkspace.bytes(first, engine: .im2col)
        return max(own, ConvWorkspace.bytes(covering: Array(rest) + sims, engine: engine))
    }
}
