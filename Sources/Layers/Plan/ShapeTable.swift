import MemoryLedger
import Tensors

/// A model spec compiled, once, into its layers: shapes, parameter counts, FLOPs, head sizes and
/// the conv scratch the engine in use books. `Network` builds its blocks from this table and the
/// memory planner predicts from it (`ShapeTable.stepProgram`), so the two read one description.
///
/// Shapes are per example: a conv block's input (C, H, W), its h (OC, H, W) and its hand-off
/// (OC, H/2, W/2) when it pools; a Linear block's (F).
public struct ShapeTable: Sendable {
    public enum LayerKind: String, Sendable, Codable { case conv, linear, output }

    /// One layer of the table.
    public struct Layer: Sendable {
        public var index: Int
        public var kind: LayerKind
        /// What one example enters with, what the block's h is, and what it hands on.
        public var input: [Int]
        public var output: [Int]
        public var handOff: [Int]
        public var poolAfter: Bool
        /// Conv blocks: the 3x3 convolution (stride 1, pad 1).
        public var geometry: ConvGeometry?
        /// Conv blocks with local heads: how the pred (and sim-bpf) head pools h.
        public var pooling: PredHeadPooling?
        /// Trainable parameters of the layer itself (the paper's #params).
        public var params: Int
        /// Everything booked as `weights`: the parameters plus BatchNorm's running mean and variance.
        public var weightElements: Int
        /// Local heads: parameters the block's optimizer trains, and every head tensor booked as
        /// `headWeights` (trained or fixed). 0 in backprop mode and for the output layer.
        public var trainedHeadParams: Int
        public var headElements: Int
        /// Multiply-adds x 2 of the layer's map for one example, forward (backward to the input
        /// and to the weights cost the same each).
        public var flopsPerExample: Double

        /// The map's weight tensor alone (a hidden block's, dormant before its greedy round):
        /// `weightElements` without the bias and BatchNorm's four per-channel tensors.
        public var mapWeightElements: Int { kind == .output ? weightElements - channels : weightElements - 5 * channels }

        public var inputCount: Int { input.reduce(1, *) }
        public var outputCount: Int { output.reduce(1, *) }
        public var handOffCount: Int { handOff.reduce(1, *) }
        /// Output channels (a Linear layer's units).
        public var channels: Int { output[0] }

        /// "conv 1->128 28x28, pool", "linear 1024", "output 10".
        public var name: String {
            switch kind {
            case .conv:
                let g = geometry!
                return "conv \(g.inChannels)->\(g.outChannels) \(g.height)x\(g.width)" + (poolAfter ? ", pool" : "")
            case .linear: return "linear \(output[0])"
            case .output: return "output \(output[0])"
            }
        }
    }

    public let spec: ModelSpec
    /// Which code runs the convolutions (their scratch depends on it).
    public let engine: ConvEngine
    public let layers: [Layer]
    /// Whole-batch local steps: the conv sim heads keep their output s for the backward
    /// (`Network.keepsSimOutput`, `--sim-output keep`) instead of recomputing it: the plans book
    /// s whole and `stepFLOPs` counts one sim forward less. Chunked steps always recompute.
    public var keepsSimOutput = false

    /// Whether `keepsSimOutput` changes anything: a learned sim head on a feature map reduced to
    /// its spatial std (vgg's predsim and sim; not the mlp, not the bpf losses).
    public var hasKeepableSimOutput: Bool {
        spec.loss.usesSim && !spec.loss.isBackpropFree && layers.contains { $0.kind == .conv && $0.output[0] > 3 && $0.output[1] > 1 }
    }

    /// The table of `spec` with its convolutions on `ShapeTable.engine(spec, engine)`.
    public init(spec: ModelSpec, engine: ConvEngine = .default) {
        self.spec = spec
        self.engine = ShapeTable.engine(spec, engine)
        let loss = spec.loss
        var layers: [Layer] = []
        for (i, b) in spec.convBlocks.enumerated() {
            let g = ConvGeometry(inChannels: b.inChannels, outChannels: b.outChannels, height: b.height, width: b.width)
            let out = [g.outChannels, g.outHeight, g.outWidth]
            let pooling = PredHeadPooling(channels: g.outChannels, height: g.outHeight, width: g.outWidth, dimInDecoder: spec.dimInDecoder)
            let heads = ShapeTable.headSizes(loss, features: pooling.features, simWeights: g.outChannels * g.outChannels * 9, classes: spec.classes)
            layers.append(Layer(index: i, kind: .conv, input: [g.inChannels, g.height, g.width], output: out,
                                handOff: b.poolAfter ? [out[0], out[1] / 2, out[2] / 2] : out, poolAfter: b.poolAfter,
                                geometry: g, pooling: loss.isLocal ? pooling : nil,
                                params: g.outChannels * g.patchSize + 3 * g.outChannels,
                                weightElements: g.outChannels * g.patchSize + 5 * g.outChannels,
                                trainedHeadParams: heads.trained, headElements: heads.elements,
                                flopsPerExample: g.flops(batch: 1)))
        }
        var inFeatures = spec.linearInputFeatures
        for _ in 0..<spec.linearBlockCount {
            let f = spec.numHidden
            let heads = ShapeTable.headSizes(loss, features: f, simWeights: f * f, classes: spec.classes)
            layers.append(Layer(index: layers.count, kind: .linear, input: [inFeatures], output: [f], handOff: [f], poolAfter: false,
                                geometry: nil, pooling: nil, params: f * inFeatures + 3 * f, weightElements: f * inFeatures + 5 * f,
                                trainedHeadParams: heads.trained, headElements: heads.elements,
                                flopsPerExample: 2 * Double(inFeatures) * Double(f)))
            inFeatures = f
        }
        let k = spec.classes
        layers.append(Layer(index: layers.count, kind: .output, input: [inFeatures], output: [k], handOff: [], poolAfter: false,
                            geometry: nil, pooling: nil, params: k * inFeatures + k, weightElements: k * inFeatures + k,
                            trainedHeadParams: 0, headElements: 0, flopsPerExample: 2 * Double(inFeatures) * Double(k)))
        self.layers = layers
    }

    /// Head tensors of a block whose decoder reads `features` values an example and whose learned
    /// sim map has `simWeights` weights (`LocalHeads.init` makes exactly these).
    static func headSizes(_ loss: LossKind, features: Int, simWeights: Int, classes: Int) -> (trained: Int, elements: Int) {
        guard loss.isLocal else { return (0, 0) }
        let p = LossKind.projectionSize
        var trained = 0, fixed = 0
        if loss.usesPred { trained += loss.isBackpropFree ? p * features + p : classes * features + classes }
        if loss.usesSim && !loss.isBackpropFree { trained += simWeights }
        if loss.isBackpropFree { fixed += p * classes }                // label projection P
        if loss.usesPred && loss.isBackpropFree { fixed += p * features } // feedback matrix B
        return (trained, trained + fixed)
    }

    public var convLayers: [Layer] { layers.filter { $0.kind == .conv } }
    public var hiddenLayers: [Layer] { layers.filter { $0.kind != .output } }
    public var outputLayer: Layer { layers[layers.count - 1] }

    /// The blocks' convolutions, and the learned sim heads' (C -> C at the block's resolution).
    public var convGeometries: [ConvGeometry] { convLayers.map { $0.geometry! } }
    public var simGeometries: [ConvGeometry] {
        guard spec.loss.usesSim && !spec.loss.isBackpropFree else { return [] }
        return convGeometries.map { ConvGeometry(inChannels: $0.outChannels, outChannels: $0.outChannels, height: $0.height, width: $0.width) }
    }

    /// The engine `spec`'s convolutions run on when `engine` is asked for: `ConvEngine.dnnlBF16`
    /// when the spec asks for bf16, oneDNN direct (`.dnnl`) instead of `.dnnlWinograd` when it
    /// rules Winograd out (`ModelSpec.winograd`), else `engine`.
    public static func engine(_ spec: ModelSpec, _ engine: ConvEngine) -> ConvEngine {
        if spec.precision == .bf16 { return .dnnlBF16 }
        return engine == .dnnlWinograd && !spec.winograd ? .dnnl : engine
    }

    /// Bytes of the one im2col workspace the network shares between every conv (0 for the mlp and
    /// for convs oneDNN computes): `ConvWorkspace(first, alsoServing: rest)` books exactly this.
    public var im2colWorkspaceBytes: Int {
        guard let first = convGeometries.first else { return 0 }
        let own = engine.skipsIm2col(first) ? ConvWorkspace.bytes(first, engine: engine) : ConvWorkspace.bytes(first, engine: .im2col)
        return max(own, ConvWorkspace.bytes(covering: Array(convGeometries.dropFirst()) + simGeometries, engine: engine))
    }

    /// Images a conv's kernels compute as one unit under this engine (`ConvMap.examplesPerGemm`).
    func imagesPerGemm(_ g: ConvGeometry) -> Int {
        engine.skipsIm2col(g) ? 1 : ConvWorkspace.defaultImagesPerGemm(g)
    }

    /// Trainable parameters without heads (the paper's #params).
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.params } }
    /// Trained local-head parameters.
    public var headParameterCount: Int { layers.reduce(0) { $0 + $1.trainedHeadParams } }
    /// Forward FLOPs of one example through the maps (heads excluded).
    public var flopsPerExample: Double { layers.reduce(0) { $0 + $1.flopsPerExample } }
}

extension ShapeTable {
    /// Multiply-adds x 2 of one local training step's maps (the blocks' and the learned sim
    /// heads'; the small pred decoders are left out), whole batches or chunks of `chunk`: each
    /// pass of a chunked step recomputes the block's forward (DESIGN.md section 3 item 2), so it
    /// costs more FLOPs than a whole-batch step, the same at any chunk size. The ratio of the two
    /// is the planner's estimate of a chunked step's slowdown (smaller chunks also run smaller
    /// GEMMs, which this count does not see). Backprop: forward, backward to weights and inputs.
    public func stepFLOPs(batch: Int, chunk: Int? = nil) -> Double {
        let b = Double(batch)
        guard spec.loss.isLocal else {
            return layers.reduce(0) { $0 + b * $1.flopsPerExample * ($1.index == 0 ? 2 : 3) }
        }
        let chunked = chunk.map { $0 < batch } ?? false
        var total = 0.0
        for (i, l) in layers.enumerated() {
            guard l.kind != .output else { total += 2 * b * l.flopsPerExample; continue }
            total += localLayerFLOPs(l, batch: batch, chunked: chunked,
                                     readsRecomputedHandOff: i > 0 && l.kind == .conv && handOffIsCheapToRecompute(layers[i - 1]))
        }
        return total
    }

    /// One hidden block's share of `stepFLOPs`: its map, its learned sim head, and (chunked,
    /// reading the previous conv block's recomputed hand-off) that block's forward once a pass.
    func localLayerFLOPs(_ l: Layer, batch: Int, chunked: Bool, readsRecomputedHandOff: Bool) -> Double {
        let b = Double(batch)
        let map = b * l.flopsPerExample
        let sim: Double = {
            guard spec.loss.usesSim && !spec.loss.isBackpropFree else { return 0 }
            let square = l.kind == .conv ? 2 * Double(l.channels * l.channels * 9 * l.output[1] * l.output[2])
                                         : 2 * Double(l.channels * l.channels)
            let std = l.kind == .conv && l.output[0] > 3 && l.output[1] > 1
            // whole: std 2 forwards (1 when s is kept) + 2 backwards, flat 1 + 2; chunked: std 3 + 3, flat 1 + 3
            let passes: Double = chunked ? (std ? 6 : 4) : (std ? (keepsSimOutput ? 3 : 4) : 3)
            return b * square * passes
        }()
        guard chunked else { return 2 * map + sim }
        // 4 forwards (moments, gather, 2 backward passes) + weights
        return 5 * map + sim + (readsRecomputedHandOff ? 4 * b * layers[l.index - 1].flopsPerExample : 0)
    }
}
