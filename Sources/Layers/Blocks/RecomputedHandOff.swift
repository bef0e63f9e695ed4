import MemoryLedger
import Tensors

/// A conv block's hand-off kept as what recomputes it, for chunked local steps (DESIGN.md
/// section 3 item 2, carried across a block boundary): the block's input, copies of the weights
/// and the batch statistics its forward used (before its update) and the dropout seed. The next
/// block reads its input a chunk at a time anyway, so it asks for rows and they are recomputed.
///
/// Worth it where the input is small against the hand-off: vgg8b's first block reads
/// (B, 1, 28, 28) and hands on (B, 128, 28, 28), 49 MiB at batch 128, recomputed by a
/// one-channel conv (1.8 MFLOP an image) instead of kept (`HiddenBlock.handOffIsCheapToRecompute`).
public final class RecomputedHandOff {
    /// The hand-off's shape, (B, C, H', W').
    public let shape: [Int]
    public let layer: Int
    let input: Tensor
    /// The block's map (its scratch included).
    let map: any HiddenMap
    let poolAfter: Bool
    let nonlinearity: Nonlinearity
    let dropout: Float
    let dropoutSeed: UInt64
    /// Copies of the block's weights and batch statistics as its forward saw them, one
    /// allocation booked as the block's activations: map weight, map bias, gamma, beta, mean, invStd.
    let frozen: Tensor
    private let ledger: Ledger

    init<Map: HiddenMap>(block: HiddenBlock<Map>, input: Tensor, mean: Tensor, invStd: Tensor, dropoutSeed: UInt64) {
        let batch = input.rowCount
        shape = [batch] + block.outputShape
        layer = block.index
        self.input = input.reshaped(block.map.inputShape(batch: batch))
        map = block.map
        poolAfter = block.poolAfter
        nonlinearity = block.nonlinearity
        dropout = block.dropout
        self.dropoutSeed = dropoutSeed
        ledger = block.ledger
        let parts = [block.weight.value, block.bias.value, block.bnWeight.value, block.bnBias.value, mean, invStd]
        frozen = Tensor([parts.reduce(0) { $0 + $1.count }], .activations, layer: block.index, label: "handoff.recipe",
                        ledger: block.ledger, zeroed: false)
        var at = 0
        for p in parts {
            (frozen.pointer + at).update(from: p.pointer, count: p.count)
            at += p.count
        }
    }

    /// The frozen tensors as views: weight, bias, gamma, beta, mean, invStd.
    private var parts: [Tensor] {
        let oc = map.outChannels
        let shapes = [map.weightShape, [oc], [oc], [oc], [oc], [oc]]
        var at = 0
        return shapes.map { s in
            defer { at += s.reduce(1, *) }
            return Tensor(storage: frozen.storage, offset: at, shape: s)
        }
    }

    public var rowCount: Int { shape[0] }
    public var byteCount: Int { shape.reduce(1, *) * MemoryLayout<Float>.stride }

    /// Rows `rows` of the hand-off into `out` (n, C, H', W'): the map, BatchNorm with the batch's
    /// statistics, nonlinearity, the batch's dropout mask for these images, max pool.
    /// `scratch` (n, C, H, W) holds h when the block pools (otherwise h is made in `out`).
    public func materialize(rows: Range<Int>, into out: Tensor, scratch: Tensor?) {
        let p = parts
        let channels = map.outChannels
        let h = poolAfter ? scratch! : out
        map.forward(x: input.rows(rows), weight: p[0], bias: p[1], into: h)
        BatchNormKernel.normalize(z: h, channels: channels, mean: p[4], invStd: p[5], gamma: p[2], beta: p[3], out: h)
        nonlinearity.forward(h)
        Dropout.apply(h, p: dropout, seed: dropoutSeed, channelSize: map.outSpatial, firstGroup: rows.lowerBound * channels)
        if poolAfter { MaxPoolKernel.forward(x: h, into: out) }
    }

    /// The whole hand-off as a tensor (for a consumer that reads it whole).
    public func materialized() -> Tensor {
        let out = Tensor(shape, .activations, layer: layer, label: "handoff", ledger: ledger, zeroed: false)
        let scratch = poolAfter ? Tensor(map.outputShape(batch: rowCount), .activations, layer: layer, label: "h",
                                         ledger: ledger, zeroed: false) : nil
        materialize(rows: 0..<rowCount, into: out, scratch: scratch)
        return out
    }
}

/// What a chunked step reads and hands on: a tensor, or a hand-off recomputed a chunk at a time.
public enum ChunkedHandOff {
    case tensor(Tensor)
    case recomputed(RecomputedHandOff)
    /// Greedy schedule: the batch through the frozen blocks, recomputed a chunk at a time.
    case frozenPrefix(FrozenPrefix)

    /// The hand-off as a tensor (recomputing a recomputed one whole).
    public var tensor: Tensor {
        switch self {
        case .tensor(let t): return t
        case .recomputed(let r): return r.materialized()
        case .frozenPrefix(let f): return f.materialized()
        }
    }

    public var rowCount: Int {
        switch self {
        case .tensor(let t): return t.rowCount
        case .recomputed(let r): return r.rowCount
        case .frozenPrefix(let f): return f.shape[0]
        }
    }
}

/// The greedy schedule's frozen prefix as a chunked step's input: rows of the batch run forward
/// through the frozen blocks (`HiddenBlock.forwardEval`) whenever a pass reads them, instead of
/// the whole batch's output being kept. Chosen when that forward is cheap against the block's
/// own (`ShapeTable.greedyRecomputesPrefix`): vgg8b's first block, whose hand-off is 128 times
/// its input.
public final class FrozenPrefix {
    /// The prefix's output for the whole batch: (B, hand-off of its last block...).
    public let shape: [Int]
    let images: Tensor
    let forward: (Tensor) -> Tensor

    init(images: Tensor, outputShape: [Int], forward: @escaping (Tensor) -> Tensor) {
        self.images = images
        shape = [images.rowCount] + outputShape
        self.forward = forward
    }

    /// Rows `rows` of the prefix's output into `out`; the blocks' own outputs are freed once copied.
    public func materialize(rows: Range<Int>, into out: Tensor) {
        let y = forward(images.rows(rows))
        out.copy(from: y)
    }

    /// The whole output as a tensor.
    public func materialized() -> Tensor { forward(images) }
}
