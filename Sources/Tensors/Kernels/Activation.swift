import CKernels

/// Elementwise nonlinearities, applied in place. Their backward needs only the output: for
/// ReLU and LeakyReLU with a positive slope, output > 0 exactly where input > 0.
public enum Nonlinearity: String, Codable, Sendable, CaseIterable {
    case relu
    case leakyRelu = "leakyrelu"

    /// Negative-side slope: 0 for ReLU, 0.01 for LeakyReLU (the reference's default).
    public var negativeSlope: Float { self == .relu ? 0 : 0.01 }

    /// x <- f(x)
    public func forward(_ x: Tensor) {
        lw_leaky_relu_forward(x.pointer, x.count, negativeSlope)
    }

    /// grad <- grad * f'(input), with f' read from the forward's output `y`.
    public func backward(output y: Tensor, grad: Tensor) {
        precondition(y.count == grad.count)
        lw_leaky_relu_backward(y.pointer, grad.pointer, y.count, negativeSlope)
    }
}
