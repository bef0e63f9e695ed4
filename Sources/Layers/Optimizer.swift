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
    public init() {}
}

/// One optimizer over one group of parameters (a block with its heads, or the output layer).
/// Its state tensors are allocated at creation (booked as `optimizerState`) and live with it.
public final class Optimizer {
    public let settings: OptimizerSettings
    public let parameters: [Parameter]
    /// Steps taken (Adam's bias correction uses it); saved in checkpoints.
    public var stepCount: Int = 0

    public init(_ parameters: [Parameter], settings: OptimizerSettings, ledger: Ledger) {
        self.settings = settings
        self.parameters = parameters
        let moments = settings.kind == .adam ? 2 : 1
        for p in parameters {
            p.state = (0..<moments).map { _ in
                Tensor(p.shape, .optimizerState, layer: p.layer, label: "optimizer.moment", ledger: ledger)
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

    /// Runs body(range) over 0..<n, split across the cores when n is large.
    private func forChunks(_ n: Int, _ body: (Range<Int>) -> Void) {
        let parts = n >= Optimizer.parallelThreshold ? Optimizer.cores : 1
        if parts == 1 { body(0..<n); return }
        let chunk = ((n + parts - 1) / parts + 7) & ~7  // 8-aligned chunk starts keep the SIMD loop whole
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
        let w = p.value.pointer, g = grad.pointer, m = p.state[0].pointer, v = p.state[1].pointer
        forChunks(p.count) { range in
            let o = range.lowerBound
            ElementwiseKernels.adam(weights: w + o, gradients: g + o, m: m + o, v: v + o, count: range.count,
                                    beta1: s.beta1, beta2: s.beta2, stepSize: stepSize, invSqrtBc2: invSqrtBc2,
                                    epsilon: s.epsilon, weightDecay: s.weightDecay)
        }
    }

    /// SGD with momentum (PyTorch form): buf = mu buf + g; p -= lr buf.
    private func sgd(_ p: Parameter, _ grad: Tensor, lr: Float) {
        let w = p.value.pointer, g = grad.pointer, buf = p.state[0].pointer
        let mu = settings.momentum, wd = settings.weightDecay, first = stepCount == 1
        forChunks(p.count) { range in
            let o = range.lowerBound
            ElementwiseKernels.sgd(weights: w + o, gradients: g + o, momentum: buf + o, count: range.count,
                                   lr: lr, mu: mu, weightDecay: wd, first: first)
        }
    }
}
