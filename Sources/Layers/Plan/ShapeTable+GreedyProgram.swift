import MemoryLedger
import Tensors

/// The greedy schedule's step programs (`Network.beginRound`, `Network.greedyStep`): one per
/// round, since each round holds other training state and runs another frozen prefix.
extension ShapeTable {
    /// Rounds of the greedy schedule: one per hidden block (the output layer trains in the last).
    public var greedyRounds: Int { hiddenLayers.count }

    /// The program of one training step in greedy round `round` (0-based): the frozen prefix's
    /// forward (micro-batches of `chunk` when it is smaller than the batch), then block `round`'s
    /// local step (whole or chunked) as in the simultaneous schedule, then the output layer's in
    /// the last round.
    public func greedyStepProgram(round k: Int, batch: Int, chunk: Int? = nil,
                                  optimizer: OptimizerSettings = OptimizerSettings()) -> StepProgram {
        precondition(batch > 0, "batch must be positive")
        precondition(spec.loss.isLocal, "the greedy schedule needs a local loss")
        precondition(k >= 0 && k < greedyRounds, "round \(k) of \(greedyRounds)")
        let chunked = chunk.flatMap { $0 < batch ? $0 : nil }
        let last = k == greedyRounds - 1
        let recompute = greedyRecomputesPrefix(round: k, chunked: chunked != nil)
        var p = StepProgram(batch: batch, chunk: chunked)
        p.mark(.stepBegins)
        if !recompute { frozenForward(&p, round: k, batch: batch, micro: chunked ?? batch) }
        let l = hiddenLayers[k]
        p.mark(.layerBegins(l.index))
        if let c = chunked {
            chunkedBlock(&p, l, batch: batch, chunk: c, source: nil, recomputeHandOff: false, frozenPrefix: recompute, writeHandOff: last)
        } else {
            localBlock(&p, l, batch: batch)
        }
        if l.index > 0 && !recompute { p.free(inputName(l.index)) }  // the frozen prefix's output
        if last {
            outputLocal(&p, batch: batch)
        } else if chunked == nil {
            p.free("\(l.index).handoff")  // no block reads it in this round
        }
        p.prepend(greedyPersistent(round: k, batch: batch, optimizer: optimizer, convCalls: p.convCalls))
        return p
    }

    /// Whether round k's chunked step reads the frozen prefix's output recomputed a chunk at a
    /// time (`FrozenPrefix`, four reads of every chunk) instead of kept whole: when the prefix's
    /// forward costs at most 1/16 of block k's, so recomputing it adds at most a quarter of the
    /// block's forward (vgg8b's round 2: block 0 is a one-channel conv handing on 51 MiB at
    /// batch 128). Whole-batch steps keep it.
    public func greedyRecomputesPrefix(round k: Int, chunked: Bool) -> Bool {
        guard chunked, k > 0 else { return false }
        let prefix = hiddenLayers.prefix(k).reduce(0) { $0 + $1.flopsPerExample }
        return 16 * prefix <= hiddenLayers[k].flopsPerExample
    }

    /// What lives through round k (`Network.init`, then `beginRound(k)`): the weights of every
    /// layer up to k (the frozen prefix's as `frozenWeights`) and the output layer's, only the
    /// bias and BatchNorm tensors of the blocks after k (their map weights are dormant), block
    /// k's heads and optimizer state, the output layer's optimizer state in the last round, the
    /// conv scratch and the input batch.
    func greedyPersistent(round k: Int, batch: Int, optimizer: OptimizerSettings,
                          convCalls: Set<StepProgram.ConvCall>) -> [PlannedEvent] {
        var e: [PlannedEvent] = []
        func book(_ name: String, _ c: Category, _ layer: Int?, _ bytes: Int) {
            guard bytes > 0 else { return }
            e.append(.allocate(name: name, category: c, layer: layer, bytes: bytes))
        }
        let f = MemoryLayout<Float>.stride
        let last = k == greedyRounds - 1
        for l in layers {
            let dormant = l.kind != .output && l.index > k ? l.mapWeightElements : 0  // drawn when its round starts
            book("\(l.index).weights", l.index < k ? .frozenWeights : .weights, l.index, f * (l.weightElements - dormant))
            if l.index == k {
                book("\(l.index).heads", .headWeights, l.index, f * l.headElements)
                book("\(l.index).optimizer", .optimizerState, l.index, optimizerStateBytes(l, optimizer: optimizer))
            }
            if l.kind == .output && last { book("\(l.index).optimizer", .optimizerState, l.index, optimizerStateBytes(l, optimizer: optimizer)) }
        }
        book("conv workspace", .workspace, nil, im2colWorkspaceBytes)
        book("conv dnnl workspace", .workspace, nil, ShapeTable.dnnlWorkspaceBytes(convCalls))
        book("input", .input, nil, f * batch * spec.inputFeatures)
        return e
    }

    // Network.frozenForward: blocks 0..<k forward only into block k's input, "(k-1).handoff"
    private func frozenForward(_ p: inout StepProgram, round k: Int, batch b: Int, micro m: Int) {
        guard k > 0 else { return }
        guard m < b else {
            frozenChain(&p, through: k, rows: b, output: inputName(k))
            return
        }
        let last = hiddenLayers[k - 1]
        p.allocate(inputName(k), .activations, layer: last.index, floats: b * last.handOffCount)
        for start in stride(from: 0, to: b, by: m) {
            frozenChain(&p, through: k, rows: min(m, b - start), output: "frozen chunk")
            p.free("frozen chunk")  // copied into the whole batch's tensor
        }
    }

    // HiddenBlock.forwardEval of blocks 0..<k on `n` examples: h (the pooled map when the block
    // pools, h freed once pooled), each block's input freed when its output exists
    func frozenChain(_ p: inout StepProgram, through k: Int, rows n: Int, output: String) {
        var input: String?
        for l in hiddenLayers.prefix(k) {
            let h = "\(l.index).eval.h"
            let out = l.index == k - 1 ? output : "\(l.index).eval.out"
            p.allocate(l.poolAfter ? h : out, .activations, layer: l.index, floats: n * l.outputCount)
            if let g = l.geometry { conv(&p, .forward, g, n, bias: true) }
            if l.poolAfter {
                p.allocate(out, .activations, layer: l.index, floats: n * l.handOffCount)
                p.free(h)
            }
            if let input { p.free(input) }
            input = out
        }
    }
}
