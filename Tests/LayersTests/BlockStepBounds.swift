import Foundation
import NumericTestSupport

/// How far a block's Float32 local step (forward through the block and its heads, the local
/// losses, the backward, the SGD update) may be from the exact step, from the number and the
/// lengths of the sums it evaluates one after another.
///
/// The model (first order, Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed.,
/// section 3.3): each sum of K Float32 terms adds at most gammaTilde_K (`RoundingBound`) of its
/// terms' magnitudes to the error of its result, and every correctly rounded elementwise
/// operation adds u. An error entering early reaches the update through the later stages, each
/// a linear map of the earlier error to first order, so the errors of the stages on the longest
/// path add up. Taking each stage's terms to be no larger than the quantity compared (values are
/// O(1) after BatchNorm; the update is compared relative to the block's largest update), the
/// step is within
///
///     sumsInSequence * gammaTilde_Kmax + elementwiseInSequence * u
///
/// of the exact step, relative to that scale, for any BLAS kernel, conv engine, chunking or
/// thread count: it depends only on the sums' lengths. The kernels' own tests check each kernel
/// against a full running error analysis (`Rounded`); these bounds compose them.
enum BlockStepBound {
    /// The sums on the longest path of a local step of one block, input to weight update:
    /// forward: the layer's sum (In + 1 or 9 C + 1), BatchNorm's mean and variance (N = B H W),
    /// the head's pooling or projection, the spatial std's mean and variance, the similarity's
    /// row mean, row norm and Gram matrix, the loss's mean (softmax normaliser or MSE);
    /// backward: the Gram matrix's and the row normalisation's backward, the std's, the sim
    /// head's input gradient, the sum of the pred and sim gradients of h, BatchNorm's sum dy
    /// and sum dy x-hat, the weight gradient (N). 18 sums; 20 leaves room for the -bpf decoder's
    /// projection and its feedback matrix.
    static let sumsInSequence = 20
    /// Elementwise operations on the same path (normalise, scale and shift, nonlinearity and its
    /// derivative, the loss derivative's scale, the beta weighting, lr times the gradient, the
    /// subtraction of the update), each one rounding.
    static let elementwiseInSequence = 20

    /// The bound above, relative to the scale of the compared quantity, for a path of `sums`
    /// sums of at most `longestSum` terms.
    static func relative(longestSum: Int, sums: Int = sumsInSequence, elementwise: Int = elementwiseInSequence) -> Double {
        Double(sums) * RoundingBound.probabilistic(terms: longestSum) + Double(elementwise) * RoundingBound.unitRoundoff
    }

    /// A network step: block k's input carries the forward errors of the blocks before it (its
    /// layer's sum and BatchNorm's two statistics each: three sums per block), then its own
    /// local step's path.
    static func networkRelative(longestSum: Int, blocks: Int) -> Double {
        relative(longestSum: longestSum, sums: sumsInSequence + 3 * blocks, elementwise: elementwiseInSequence + 3 * blocks)
    }

    /// The finite-difference metric of a gradient check of a Float64 loss at h = 1e-6
    /// (`FiniteDifference.bound`): the loss's third derivatives stay below 1e4 for these O(1)
    /// inputs (each derivative through BatchNorm brings a factor invstd of O(1), through the
    /// similarity 1 / row norm of O(1)); one evaluation's rounding is that of `sums` sums in
    /// sequence of at most `longestSum` terms, each counted as lambda sqrt(K) roundings
    /// (Higham-Mary, as for Float32), on terms whose magnitudes sum to at most 10 (O(1) losses).
    /// About 1e-6 for a block, below the rounding bound of the Float32 step.
    static func finiteDifference(sums: Int, longestSum: Int) -> Double {
        let roundings = Double(sums) * RoundingBound.lambda * Double(longestSum).squareRoot()
        return FiniteDifference.bound(step: 1e-6, thirdDerivative: 1e4, terms: Int(roundings.rounded(.up)), absoluteSum: 10)
    }

    /// The forward's sums in sequence (up to the loss), for the loss's own rounding bound and
    /// the finite-difference metric.
    static let forwardSums = 10
}

/// The forward of a block's BatchNorm (training mode) and nonlinearity as the kernels compute
/// it, operation by operation (`Rounded`, as `BatchNormKernelTests` models the kernel), from the
/// layer's output z with its rounding bound: the batch mean, the running statistics updated
/// with momentum 0.1 (unbiased variance), and h = nonlinearity(gamma x-hat + beta).
struct BlockForwardModel {
    var mean: [Rounded] = [], runningMean: [Rounded] = [], runningVar: [Rounded] = []
    var h: [Rounded]

    static let momentum = Rounded.constant(0.1), epsilon = Rounded.constant(1e-5)

    /// z is (B, C, S); statistics per channel over B S.
    init(z: [Rounded], batch: Int, channels: Int, spatial: Int, gamma: [Double], beta: [Double], slope: Double,
         runningMean0: [Double], runningVar0: [Double]) {
        let n = batch * spatial, u = Rounded.u
        h = z
        let invN = Rounded(exact: 1) / Rounded(exact: Double(n))
        for c in 0..<channels {
            let indices = z.indices.filter { ($0 / spatial) % channels == c }
            let values = indices.map { z[$0] }
            let mean = Rounded.sum(values) * invN
            // sum (z_i - m')^2 = S + N (m - m')^2 exactly (see BatchNormKernelTests); each z_i
            // carries its own error e_i, which moves a deviation by at most e_i.
            let exactS = values.reduce(0) { $0 + ($1.exact - mean.exact) * ($1.exact - mean.exact) }
            let deviations = values.map { abs($0.exact - mean.exact) + mean.error + $0.error }
            let propagated = values.reduce(0) { $0 + 2 * abs($1.exact - mean.exact) * $1.error + $1.error * $1.error }
            let sumSquares = Rounded(exact: exactS, error: Double(n) * mean.error * mean.error + propagated
                                     + (3 * u + RoundingBound.probabilistic(terms: n)) * (1 + 4 * u) * deviations.reduce(0) { $0 + $1 * $1 })
            let invStd = Rounded(exact: 1) / (sumSquares * invN + Self.epsilon).squareRoot()
            let g = Rounded(exact: gamma[c]), b = Rounded(exact: beta[c])
            let slopeConstant = Rounded.constant(slope)
            for i in indices {
                let out = g * ((z[i] - mean) * invStd) + b
                // The nonlinearity is 1-Lipschitz: an input within e of the exact one gives an
                // output within e (plus the slope product's rounding on the negative side).
                let exact = out.exact > 0 ? out.exact : slope * out.exact
                h[i] = Rounded(exact: exact, error: out.error + (slopeConstant * out).error + u * abs(exact))
            }
            let keep = Rounded(exact: 1) - Self.momentum
            let unbias = Rounded(exact: Double(n)) / Rounded(exact: Double(n - 1))
            self.mean.append(mean)
            runningMean.append(keep * Rounded(exact: runningMean0[c]) + Self.momentum * mean)
            runningVar.append(keep * Rounded(exact: runningVar0[c]) + Self.momentum * sumSquares * invN * unbias)
        }
    }

    /// The hand-off dropout(h): h times the Float32 mask value (0 or 1 / (1 - p) as the kernel
    /// rounds it), one rounding.
    func droppedOut(mask: [Double]) -> [Rounded] {
        zip(h, mask).map { $0 * Rounded(exact: $1) }
    }

    /// 2x2 max pool of (planes, H, W): selecting is exact, so the largest of values each within
    /// e_i of exact is within max e_i of the exact largest.
    static func maxPool2x2(_ x: [Rounded], planes: Int, height: Int, width: Int) -> [Rounded] {
        let oh = height / 2, ow = width / 2
        var out: [Rounded] = []
        out.reserveCapacity(planes * oh * ow)
        for p in 0..<planes {
            for r in 0..<oh {
                for s in 0..<ow {
                    let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map { x[(p * height + 2 * r + $0.0) * width + 2 * s + $0.1] }
                    out.append(Rounded(exact: window.map(\.exact).max()!, error: window.map(\.error).max()!))
                }
            }
        }
        return out
    }
}

extension BlockForwardModel {
    /// A conv block's hand-off from frozen weights and batch statistics, as `RecomputedHandOff`
    /// and the chunked step compute it: z = conv3x3(x) + b (a sum of 9 C + 1 terms, any order),
    /// x-hat = (z - mean) invstd, gamma x-hat + beta, the nonlinearity, dropout, the max pool.
    /// `frozen` lists weight, bias, gamma, beta, mean, invStd (Float32 values, exact here).
    static func frozenConvHandOff(x: [Double], batch: Int, inChannels c: Int, outChannels oc: Int, size: Int,
                                  frozen: [Double], slope: Double, mask: [Double], poolAfter: Bool) -> [Rounded] {
        var at = 0
        func next(_ n: Int) -> [Double] { defer { at += n }; return Array(frozen[at..<(at + n)]) }
        let w = next(oc * c * 9), b = next(oc), gamma = next(oc), beta = next(oc), mean = next(oc), invStd = next(oc)
        let exact = ConvReference.conv3x3(x, batch: batch, channels: c, height: size, width: size, weight: w, outChannels: oc, bias: b)
        let magnitudes = ConvReference.conv3x3(x.map(abs), batch: batch, channels: c, height: size, width: size,
                                               weight: w.map(abs), outChannels: oc, bias: b.map(abs))
        let z = Rounded.ofSums(terms: 9 * c + 1, exact: exact, absoluteSums: magnitudes)
        let spatial = size * size, slopeConstant = Rounded.constant(slope)
        let h = z.indices.map { i -> Rounded in
            let ch = (i / spatial) % oc
            let out = Rounded(exact: gamma[ch]) * ((z[i] - Rounded(exact: mean[ch])) * Rounded(exact: invStd[ch])) + Rounded(exact: beta[ch])
            let value = out.exact > 0 ? out.exact : slope * out.exact
            return Rounded(exact: value, error: out.error + (slopeConstant * out).error + Rounded.u * abs(value))
        }
        let dropped = zip(h, mask).map { $0 * Rounded(exact: $1) }
        return poolAfter ? maxPool2x2(dropped, planes: batch * oc, height: size, width: size) : dropped
    }
}

extension BlockStepBound {
    /// The sums on the longest path of the heads alone, h to a head's gradient: the head's
    /// layer, the similarity's row mean, row norm and Gram matrix (or the softmax normaliser),
    /// the loss's mean, then the Gram matrix's and the normalisation's backward, the head's
    /// input gradient, the sum of the pred and sim gradients of h, the weight gradient (B), and
    /// the -bpf decoder's projection: 12.
    static let headSums = 12

    /// A head's result (dh, its weight gradients) against the exact gradient, relative to the
    /// largest entry (`relative` on the heads' path).
    static func heads(longestSum: Int) -> Double {
        relative(longestSum: longestSum, sums: headSums, elementwise: headSums)
    }

    /// A reported loss against its Float64 value: the forward's sums, relative to max(1, |loss|).
    static func loss(longestSum: Int) -> Double {
        relative(longestSum: longestSum, sums: forwardSums, elementwise: forwardSums)
    }
}
