import MemoryLedger
import Tensors
import Dispatch
import Foundation

/// Which optimizer trains a group of parameters.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    case adam
    case sgd
}

/// Optimizer settings shared by every group (DESIGN.md section 2: Adam 0.9, 0.999, 1e-8).
public struct OptimizerSettings: Codable, Sendable, Equatable {
    public var kind: OptimizerKind = .adam
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    /// How the moments are stored (fp32, bf16 or 8-bit block-wise: `OptimizerStateFormat`).
    public var stateFormat: OptimizerStateFormat = .fp32
    public init() {}

    private enum CodingKeys: String, CodingKey { case kind, beta1, beta2, epsilon, momentum, weightDecay, stateFormat }

    /// Settings saved before `stateFormat` existed decode as fp32, what those runs used.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(OptimizerKind.self, forKey: .kind)
        beta1 = try c.decode(Float.self, forKey: .beta1)
        beta2 = try c.decode(Float.self, forKey: .beta2)
        epsilon = try c.decode(Float.self, forKey: .epsilon)
        momentum = try c.decode(Float.self, forKey: .momentum)
        weightDecay = try c.decode(Float.self, forKey: .weightDecay)
        stateFormat = try c.decodeIfPresent(OptimizerStateFormat.self, forKey: .stateFormat) ?? .fp32
    }
}

/// One optimizer over one group of parameters (a block with its heads, or the output layer).
/// Its state is allocated at creation (booked as `optimizerState`, at the size of its format:
/// `OptimizerSettings.stateBytes`) and lives with it.
public final class Optimizer {
    public let settings: OptimizerSettings
    public let parameters: [Parameter]
    /// Steps taken (Adam's bias correction uses it); saved in checkpoints.
    public var stepCount: Int = 0

    public init(_ parameters: [Parameter], settings: OptimizerSettings, ledger: Ledger) {
        self.settings = settings
        self.parameters = parameters
        for p in parameters {
            // Adam's second moment (index 1) is never negative and takes the unsigned code.
            p.state = (0..<settings.momentsPerParameter).map { i in
                OptimizerMoment(shape: p.shape, format: settings.stateFormat, signed: !(settings.kind == .adam && i == 1),
                                layer: p.layer, ledger: ledger)
            }
        }
    }

    /// Updates every parameter that has a gradient with learning rate `lr`.
    public func step(lr: Float) {
        stepCount += 1
        for p in parameters {
            guard let g = p.grad else { continue }
            switch settings.kind {
            case .adam: adam(p, g, lr: lr)
            case .sgd: sgd(p, g, lr: lr)
            }
        }
    }

    /// Parameters at least this large are updated by two threads (memory-bound loop: one core
    /// cannot saturate the memory bus here; `layerwise bench train`, update phase).
    static let parallelThreshold = 1 << 16
    /// False: every update in one call (tests compare the split against it).
    var splitsAcrossCores = true

    /// Runs body(range) over 0..<n, split across the cores when n is large, each part starting at
    /// a multiple of `alignment` (a power of two: 8 keeps the SIMD loop whole, a quantisation
    /// block keeps the 8-bit blocks whole).
    private func forChunks(_ n: Int, alignment: Int = 8, _ body: (Range<Int>) -> Void) {
        let parts = splitsAcrossCores && n >= Optimizer.parallelThreshold ? Optimizer.cores : 1
        if parts == 1 { body(0..<n); return }
        let chunk = ((n + parts - 1) / parts + alignment - 1) & ~(alignment - 1)
        DispatchQueue.concurrentPerform(iterations: parts) { k in
            let lo = min(n, k * chunk), hi = min(n, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }

    static let cores = ProcessorCount.online

    /// PyTorch's Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    /// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). The loop is `ElementwiseKernels.adam`
    /// (C, AVX-512/AVX2/NEON chosen at run time): it streams 16 bytes x 4 arrays per parameter and
    /// was 21% of an mlp predsim step as a scalar loop (`layerwise bench train`, update phase).
    private func adam(_ p: Parameter, _ grad: Tensor, lr: Float) {
        let s = settings
        let bc1 = 1 - Float(Foundation.pow(Double(s.beta1), Double(stepCount)))
        let bc2 = 1 - Float(Foundation.pow(Double(s.beta2), Double(stepCount)))
        let stepSize = lr / bc1, invSqrtBc2 = 1 / bc2.squareRoot()
        let w = p.value.pointer, g = grad.pointer
        switch (p.state[0].storage, p.state[1].storage) {
        case (.fp32(let mt), .fp32(let vt)):
            let m = mt.pointer, v = vt.pointer
            forChunks(p.count) { range in
                let o = range.lowerBound
                ElementwiseKernels.adam(weights: w + o, gradients: g + o, m: m + o, v: v + o, count: range.count,
                                        beta1: s.beta1, beta2: s.beta2, stepSize: stepSize, invSqrtBc2: invSqrtBc2,
                                        epsilon: s.epsilon, weightDecay: s.weightDecay)
            }
        case (.bf16(let m), .bf16(let v)):
            let key = roundingKey(p)
            forChunks(p.count) { range in
                let o = range.lowerBound
                ElementwiseKernels.adamBF16(weights: w + o, gradients: g + o, m: m.pointer + o, v: v.pointer + o, count: range.count,
                                            offset: o, key: key, beta1: s.beta1, beta2: s.beta2, stepSize: stepSize,
                                            invSqrtBc2: invSqrtBc2, epsilon: s.epsilon, weightDecay: s.weightDecay)
            }
        case (.int8(let mc, let ms), .int8(let vc, let vs)):
            let block = ElementwiseKernels.quantizationBlock
            forChunks(p.count, alignment: block) { range in
                let o = range.lowerBound, b = o / block
                ElementwiseKernels.adamInt8(weights: w + o, gradients: g + o, mCodes: mc.pointer + o, mScales: ms.pointer + b,
                                            vCodes: vc.pointer + o, vScales: vs.pointer + b, count: range.count,
                                            beta1: s.beta1, beta2: s.beta2, stepSize: stepSize, invSqrtBc2: invSqrtBc2,
                                            epsilon: s.epsilon, weightDecay: s.weightDecay)
            }
        default: preconditionFailure("\(p.name): Adam's moments are in two formats")
        }
    }

    /// The stochastic-rounding key of `p` at this step: a hash of its name (so tensors round
    /// independently) and the step count (saved in checkpoints, so a resumed run rounds as the
    /// uninterrupted one would).
    private func roundingKey(_ p: Parameter) -> UInt32 {
        var h: UInt32 = 2_166_136_261  // FNV-1a
        for byte in p.name.utf8 { h = (h ^ UInt32(byte)) &* 16_777_619 }
        return ElementwiseKernels.stochasticKey(seed: h, step: stepCount)
    }

    /// SGD with momentum (PyTorch form): buf = mu buf + g; p -= lr buf.
    private func sgd(_ p: Parameter, _ grad: Tensor, lr: Float) {
        let w = p.value.pointer, g = grad.pointer
        let mu = settings.momentum, wd = settings.weightDecay, first = stepCount == 1
        switch p.state[0].storage {
        case .fp32(let t):
            let buf = t.pointer
            forChunks(p.count) { range in
                let o = range.lowerBound
                ElementwiseKernels.sgd(weights: w + o, gradients: g + o, momentum: buf + o, count: range.count,
                                       lr: lr, mu: mu, weightDecay: wd, first: first)
            }
        case .bf16(let buf):
            let key = roundingKey(p)
            forChunks(p.count) { range in
                let o = range.lowerBound
                ElementwiseKernels.sgdBF16(weights: w + o, gradients: g + o, momentum: buf.pointer + o, count: range.count,
                                           offset: o, key: key, lr: lr, mu: mu, weightDecay: wd, first: first)
            }
        case .int8(let codes, let scales):
            let block = ElementwiseKernels.quantizationBlock
            forChunks(p.count, alignment: block) { range in
                let o = range.lowerBound
                ElementwiseKernels.sgdInt8(weights: w + o, gradients: g + o, codes: codes.pointer + o, scales: scales.pointer + o / block,
                                           count: range.count, lr: lr, mu: mu, weightDecay: wd, first: first)
            }
        }
    }
}
