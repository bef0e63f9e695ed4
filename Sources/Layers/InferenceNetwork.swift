import MemoryLedger
import Tensors

/// A model for inference only: the hidden blocks' maps (3x3 conv or Linear), BatchNorm with
/// running statistics, the nonlinearity and max pooling, then the output layer. No heads, no
/// dropout, no gradients, no optimizer state.
///
/// It is built from a `ModelSpec` and parameter tensors looked up by their checkpoint names
/// (`blocks.{k}.conv|linear.weight|bias`, `blocks.{k}.bn.weight|bias|running_mean|running_var`,
/// `output.weight|bias`), so it needs neither the training network's block types nor its heads:
/// either the training network's own tensors, shared (`ParameterSource.shared`), or tensors it
/// allocates and has filled, from a checkpoint file for example (`ParameterSource.load`).
///
/// Memory: batches run as micro-batches of at most `microBatch` examples, one after the other.
/// BatchNorm uses running statistics here, so an example's logits do not depend on the others in
/// its batch and micro-batching is exact. Inside a micro-batch a layer's input is dead as soon as
/// its map has read it, so only two activation tensors are ever needed at once: a map's input and
/// output, or a block's output and its pooled hand-off. They live in one allocation booked as
/// `activations` (`ActivationArena`), each layer writing at the end its input does not occupy:
///
///     arena = n * max over layers of (input + output) and (output + pooled)   floats,
///
/// for a micro-batch of n examples, the first layer's input being the caller's batch (not booked
/// here). It does not grow with the batch. One allocation of one size, kept and reused batch
/// after batch, also keeps the heap from fragmenting: with a tensor per layer output, sizes and
/// lifetimes interleave and glibc's heap (which the ledger's allocator settings keep for tensors
/// up to 32 MiB, untrimmed) grew to about three times the live bytes (vgg8b `eval`, micro-batches
/// of 32: 227 MB of heap for 76 MB booked). The conv scratch is one `ConvWorkspace` shared by every conv (they run
/// one at a time), as in the training network.
public final class InferenceNetwork {
    /// Where the parameter tensors come from.
    public enum ParameterSource {
        /// Use the tensor this returns for each name as it is: storage shared, nothing copied or
        /// booked (for example a training network's tensors, for the test pass inside `train`).
        /// nil: there is no tensor of that name.
        case shared((String) -> Tensor?)
        /// Allocate each tensor, booked as `weights` of its layer, and let `fill` write its
        /// values (for example from a checkpoint file). `fill` throws when it has no such tensor.
        case load((_ name: String, _ tensor: Tensor) throws -> Void)
    }

    /// Examples per micro-batch when none is given. vgg8b at 16: 18.4 MiB of activations (block
    /// 1's 128-channel input and 256-channel output at 28x28). 16 and 32 ran `eval` equally fast
    /// (vgg8b, 1,000 images, one BLAS thread, release: 28.3 s and 28.4 s of CPU): the large maps
    /// run one image per GEMM at any micro-batch, and the small ones are a few percent of the work.
    public static let defaultMicroBatch = 16

    public let spec: ModelSpec
    /// At most this many examples run through the layers at a time.
    public let microBatch: Int
    public let ledger: Ledger
    /// The conv blocks, then the Linear blocks, then the output layer.
    let layers: [Layer]
    /// The scratch every conv uses (nil for the mlp).
    let convWorkspace: ConvWorkspace?
    /// The activations of one micro-batch: allocated by the first batch, kept for the network's
    /// lifetime (grown once if a first batch smaller than `microBatch` is followed by a larger
    /// one). Allocating it per batch let glibc's heap carve small allocations out of the freed
    /// block between batches and grow by one arena per batch (vgg8b `eval` at batch 128: 198 MiB
    /// RSS for a 57 MiB ledger peak).
    private var arena: ActivationArena?

    /// One layer's parameters and shapes.
    struct Layer {
        enum Map {
            case conv(ConvGeometry, ConvWorkspace)
            case linear(inFeatures: Int, outFeatures: Int)
        }
        struct Norm {
            var gamma: Tensor
            var beta: Tensor
            var runningMean: Tensor
            var runningVar: Tensor
        }
        var index: Int
        var map: Map
        var weight: Tensor
        var bias: Tensor
        /// BatchNorm and the nonlinearity follow the map (hidden blocks; nil for the output layer).
        var norm: Norm?
        var poolAfter: Bool

        var outFeatures: Int {
            switch map {
            case .conv(let g, _): return g.outChannels
            case .linear(_, let out): return out
            }
        }

        func outputShape(batch: Int) -> [Int] {
            switch map {
            case .conv(let g, _): return g.outputShape(batch: batch)
            case .linear(_, let out): return [batch, out]
            }
        }
    }

    /// The engine evaluation runs on: oneDNN's fp32 direct convolutions where training would
    /// use its Winograd or bf16 ones. A test pass runs beside the training network, whose
    /// memory plan does not count a second Winograd scratch, and a bf16-trained checkpoint must
    /// evaluate on any CPU (its weights are fp32).
    public static func engine(_ spec: ModelSpec, _ engine: ConvEngine) -> ConvEngine {
        engine == .dnnlWinograd || engine == .dnnlBF16 ? .dnnl : engine
    }

    /// - Parameters:
    ///   - spec: the model to run; its heads are not built.
    ///   - parameters: where the weights and BatchNorm statistics come from (shared with a
    ///     training network, or loaded from a checkpoint).
    ///   - microBatch: examples per micro-batch (at least 1).
    ///   - engine: the conv engine (`ConvEngine.default` unless a test picks one), as
    ///     `InferenceNetwork.engine(spec:_:)` resolves it.
    ///   - ledger: where the network's buffers are booked.
    /// - Throws: `InferenceNetworkError` when a `.shared` source lacks a tensor or has one of
    ///   another shape; whatever a `.load` source's `fill` throws.
    public init(spec: ModelSpec, parameters: ParameterSource, microBatch: Int = InferenceNetwork.defaultMicroBatch,
                engine: ConvEngine = .default, ledger: Ledger = .shared) throws {
        precondition(microBatch >= 1, "micro-batch must be at least 1, got \(microBatch)")
        self.spec = spec
        self.microBatch = microBatch
        self.ledger = ledger

        func tensor(_ name: String, _ shape: [Int], layer: Int, label: StaticString) throws -> Tensor {
            switch parameters {
            case .shared(let lookup):
                guard let t = lookup(name) else { throw InferenceNetworkError.missingTensor(name: name) }
                guard t.shape == shape else { throw InferenceNetworkError.shapeMismatch(name: name, shape: t.shape, expected: shape) }
                return t
            case .load(let fill):
                let t = Tensor(shape, .weights, layer: layer, label: label, ledger: ledger, zeroed: false)
                try fill(name, t)
                return t
            }
        }
        func norm(_ k: Int, channels: Int) throws -> Layer.Norm {
            Layer.Norm(gamma: try tensor("blocks.\(k).bn.weight", [channels], layer: k, label: "bn.weight"),
                       beta: try tensor("blocks.\(k).bn.bias", [channels], layer: k, label: "bn.bias"),
                       runningMean: try tensor("blocks.\(k).bn.running_mean", [channels], layer: k, label: "bn.running_mean"),
                       runningVar: try tensor("blocks.\(k).bn.running_var", [channels], layer: k, label: "bn.running_var"))
        }

        let geometries = spec.convBlocks.map {
            ConvGeometry(inChannels: $0.inChannels, outChannels: $0.outChannels, height: $0.height, width: $0.width)
        }
        let workspace = geometries.first.map {
            ConvWorkspace($0, alsoServing: Array(geometries.dropFirst()), engine: InferenceNetwork.engine(spec, engine), ledger: ledger)
        }
        convWorkspace = workspace
        var layers: [Layer] = []
        for (k, block) in spec.convBlocks.enumerated() {
            let g = geometries[k]
            layers.append(Layer(index: k, map: .conv(g, workspace!.serving(g)),
                                weight: try tensor("blocks.\(k).conv.weight", g.weightShape, layer: k, label: "conv.weight"),
                                bias: try tensor("blocks.\(k).conv.bias", [g.outChannels], layer: k, label: "conv.bias"),
                                norm: try norm(k, channels: g.outChannels), poolAfter: block.poolAfter))
        }
        var inFeatures = spec.linearInputFeatures
        for i in 0..<spec.linearBlockCount {
            let k = geometries.count + i, out = spec.numHidden
            layers.append(Layer(index: k, map: .linear(inFeatures: inFeatures, outFeatures: out),
                                weight: try tensor("blocks.\(k).linear.weight", [out, inFeatures], layer: k, label: "linear.weight"),
                                bias: try tensor("blocks.\(k).linear.bias", [out], layer: k, label: "linear.bias"),
                                norm: try norm(k, channels: out), poolAfter: false))
            inFeatures = out
        }
        let k = layers.count
        layers.append(Layer(index: k, map: .linear(inFeatures: inFeatures, outFeatures: spec.classes),
                            weight: try tensor("output.weight", [spec.classes, inFeatures], layer: k, label: "output.weight"),
                            bias: try tensor("output.bias", [spec.classes], layer: k, label: "output.bias"),
                            norm: nil, poolAfter: false))
        self.layers = layers
    }

    /// Floats of activations per example at the peak: the largest, over layers, of a map's input
    /// plus its output and of a block's output plus its pooled hand-off (the first layer's input
    /// is the caller's).
    public var activationFloatsPerExample: Int {
        var peak = 0, input = 0
        for layer in layers {
            let out = layer.outputShape(batch: 1).reduce(1, *)
            peak = max(peak, input + out)
            input = out
            if layer.poolAfter {
                let pooled = MaxPoolKernel.outputShape(layer.outputShape(batch: 1)).reduce(1, *)
                peak = max(peak, out + pooled)
                input = pooled
            }
        }
        return peak
    }

    /// Calls `body` with the logits (n, classes) of each micro-batch of `images` (B, C, H, W)
    /// (or (B, features) for the mlp), in order, with the rows of `images` they belong to. The
    /// logits are overwritten by the next micro-batch; copy what you keep.
    public func forEachMicroBatch(_ images: Tensor, _ body: (_ rows: Range<Int>, _ logits: Tensor) throws -> Void) rethrows {
        let batch = images.rowCount
        guard batch > 0 else { return }
        let floats = min(batch, microBatch) * activationFloatsPerExample
        if arena.map({ $0.storage.count < floats }) ?? true {
            arena = nil  // freed before the larger one is booked
            arena = ActivationArena(floats: floats, ledger: ledger)
        }
        let arena = arena!
        for start in stride(from: 0, to: batch, by: microBatch) {
            let rows = start..<min(start + microBatch, batch)
            // A view of the caller's batch: not booked here.
            var x = images.rows(rows)
            var end: ActivationArena.End?  // where x lives (nil: the caller's batch)
            for layer in layers { (x, end) = forward(layer, x, at: end, arena: arena) }
            try body(rows, x)
        }
        ledger.enter(.idle)
    }

    /// The number of examples of `images` whose largest logit is at their label.
    public func evaluate(images: Tensor, labels: UnsafePointer<Int32>) -> Int {
        var correct = 0
        forEachMicroBatch(images) { rows, logits in
            for r in 0..<rows.count where CrossEntropy.argmax(logits, row: r) == Int(labels[rows.lowerBound + r]) { correct += 1 }
        }
        return correct
    }

    /// One layer on one micro-batch whose input `x` is at `end` of the arena (nil: elsewhere).
    /// The output goes to the other end; a pooled hand-off back to the input's end, whose bytes
    /// are dead once the map has read them. Returns the layer's hand-off and where it is.
    // conv: x (n, C, H, W) -> h (n, OC, H, W) [-> pooled (n, OC, H/2, W/2)]
    // linear: x (n, in) (a conv hand-off is read flat) -> h (n, out)
    private func forward(_ layer: Layer, _ x: Tensor, at end: ActivationArena.End?,
                         arena: ActivationArena) -> (Tensor, ActivationArena.End) {
        ledger.enter(.evaluate, layer: layer.index, label: "evaluate")
        let batch = x.rowCount
        let outEnd = end?.other ?? .front
        let h = arena.tensor(layer.outputShape(batch: batch), at: outEnd)
        switch layer.map {
        case .conv(let g, let workspace):
            Conv2dKernel.forward(x: x.reshaped(g.inputShape(batch: batch)), weight: layer.weight, bias: layer.bias,
                                 into: h, workspace: workspace)
        case .linear(let inFeatures, _):
            LinearKernel.forward(x: x.reshaped([batch, inFeatures]), weight: layer.weight, bias: layer.bias, into: h)
        }
        if let norm = layer.norm {
            BatchNormKernel.forwardEval(z: h, channels: layer.outFeatures, gamma: norm.gamma, beta: norm.beta,
                                        runningMean: norm.runningMean, runningVar: norm.runningVar, out: h)
            spec.nonlinearity.forward(h)
        }
        guard layer.poolAfter else { return (h, outEnd) }
        let pooled = arena.tensor(MaxPoolKernel.outputShape(h.shape), at: outEnd.other)
        MaxPoolKernel.forward(x: h, into: pooled)
        return (pooled, outEnd.other)
    }
}
