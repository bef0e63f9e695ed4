import NumericTestSupport
import Tensors
import XCTest

/// BatchNormKernel over (B, C, S): training forward (batch statistics, biased variance),
/// running statistics (momentum 0.1, unbiased variance), evaluation forward, backward.
///
/// Each result is compared with a rounding model of the kernel's computation (`Rounded`): the
/// exact value of the formula on the Float32 inputs with a bound on its Float32 error, built
/// from the length of its sums (mean, sum of squares, sum dy, sum dy x-hat) and one rounding per
/// correctly rounded operation (division, square root, products). The statistics feed every
/// output, so a skipped statistic (mean not subtracted, variance with the wrong N, epsilon left
/// out) moves results by far more than the bound.
final class BatchNormKernelTests: XCTestCase {
    let batch = 4, channels = 3
    static let momentum = Rounded.constant(0.1), epsilon = Rounded.constant(1e-5)

    private struct Inputs {
        var z, gamma, beta, runningMean, runningVar: [Double]
    }

    private func inputs(spatial: Int, seed: UInt64) -> Inputs {
        var random = TestRandom(seed: seed)
        // Per-channel offsets so the means are far from 0 and differ per channel.
        var z = random.uniform(batch * channels * spatial, -2, 2)
        for i in z.indices { z[i] = Double(Float(z[i] + Double((i / spatial) % channels) * 1.5 - 1)) }
        return Inputs(z: z, gamma: random.uniform(channels, 0.5, 1.5), beta: random.uniform(channels),
                      runningMean: random.uniform(channels), runningVar: random.uniform(channels, 0.5, 2))
    }

    /// The training forward as BatchNorm.swift computes it, per channel over its N = B S values.
    private struct TrainingModel {
        var mean: [Rounded] = [], sumSquares: [Rounded] = [], invStd: [Rounded] = []
        var xhat: [Rounded], out: [Rounded]
        var runningMean: [Rounded] = [], runningVar: [Rounded] = []
    }

    private func trainingModel(_ p: Inputs, spatial: Int) -> TrainingModel {
        let n = batch * spatial, u = Rounded.u
        var m = TrainingModel(xhat: p.z.map { Rounded(exact: $0) }, out: p.z.map { Rounded(exact: $0) })
        let invN = Rounded(exact: 1) / Rounded(exact: Double(n))
        for c in 0..<channels {
            let indices = p.z.indices.filter { ($0 / spatial) % channels == c }
            let z = indices.map { p.z[$0] }
            let mean = Rounded.sum(z.map { Rounded(exact: $0) }) * invN
            // sum (z_i - m')^2 with m' the computed mean: it equals S + N (m - m')^2 exactly (the
            // deviations from the exact mean m sum to zero), so the mean's error enters at second
            // order. Each deviation is rounded once and squared (3u), then summed (gammaTilde_N),
            // all relative to deviations of at most |z_i - m| + e_m.
            let exactS = z.reduce(0) { $0 + ($1 - mean.exact) * ($1 - mean.exact) }
            let magnitudes = z.reduce(0) { $0 + pow(abs($1 - mean.exact) + mean.error, 2) }
            let sumSquares = Rounded(exact: exactS, error: Double(n) * mean.error * mean.error
                                     + (3 * u + RoundingBound.probabilistic(terms: n)) * (1 + 4 * u) * magnitudes)
            let invStd = Rounded(exact: 1) / (sumSquares * invN + Self.epsilon).squareRoot()
            let gamma = Rounded(exact: p.gamma[c]), beta = Rounded(exact: p.beta[c])
            for i in indices {
                m.xhat[i] = (Rounded(exact: p.z[i]) - mean) * invStd
                m.out[i] = gamma * m.xhat[i] + beta
            }
            let keep = Rounded(exact: 1) - Self.momentum
            let unbias = Rounded(exact: Double(n)) / Rounded(exact: Double(n - 1))
            m.mean.append(mean)
            m.sumSquares.append(sumSquares)
            m.invStd.append(invStd)
            m.runningMean.append(keep * Rounded(exact: p.runningMean[c]) + Self.momentum * mean)
            m.runningVar.append(keep * Rounded(exact: p.runningVar[c]) + Self.momentum * sumSquares * invN * unbias)
        }
        return m
    }

    func testTrainingForwardAndRunningStatisticsMatchReference() {
        for spatial in [1, 3] {
            let p = inputs(spatial: spatial, seed: 31 + UInt64(spatial))
            let z = makeTensor([batch, channels, spatial], p.z), out = zeros([batch, channels, spatial])
            let rm = makeTensor([channels], p.runningMean), rv = makeTensor([channels], p.runningVar)
            let mean = zeros([channels]), invStd = zeros([channels])
            BatchNormKernel.forwardTraining(z: z, channels: channels, gamma: makeTensor([channels], p.gamma),
                                            beta: makeTensor([channels], p.beta), runningMean: rm, runningVar: rv,
                                            mean: mean, invStd: invStd, out: out)
            let model = trainingModel(p, spatial: spatial)
            // The model's exact values are the definition (Reference, written from DESIGN.md).
            let ref = Reference.batchNormTraining(p.z, batch: batch, channels: channels, spatial: spatial, gamma: p.gamma, beta: p.beta)
            XCTAssertNil(RoundingBound.violation(ref.out, model.out.map { Rounded(exact: $0.exact, error: 1e-12) }), "model vs Reference")
            assertWithinBound(out.doubles, model.out, "out, S=\(spatial)")
            assertWithinBound(mean.doubles, model.mean, "mean, S=\(spatial)")
            assertWithinBound(invStd.doubles, model.invStd, "invStd (biased), S=\(spatial)")
            // z now holds x-hat = (z - mean) * invstd
            assertWithinBound(z.doubles, model.xhat, "x-hat, S=\(spatial)")
            assertWithinBound(rm.doubles, model.runningMean, "running mean, S=\(spatial)")
            assertWithinBound(rv.doubles, model.runningVar, "running var (unbiased), S=\(spatial)")

            // Broken variants: x-hat without the mean subtracted, and the running variance
            // updated with the biased (1/N) variance instead of the unbiased one.
            let noMean = p.z.indices.map { i in p.z[i] * model.invStd[(i / spatial) % channels].exact }
            assertBoundCatches(noMean, model.xhat, "x-hat with the mean not subtracted, S=\(spatial)")
            let biasedRunningVar = (0..<channels).map { 0.9 * p.runningVar[$0] + 0.1 * ref.biasedVariance[$0] }
            assertBoundCatches(biasedRunningVar, model.runningVar, "running variance with 1/N, S=\(spatial)")
        }
    }

    /// out = z s + (beta - rm s), s = gamma / sqrt(rv + eps), as BatchNorm.swift computes it.
    func testEvalForwardUsesRunningStatistics() {
        let spatial = 3
        let p = inputs(spatial: spatial, seed: 35)
        let z = makeTensor([batch, channels, spatial], p.z), out = zeros([batch, channels, spatial])
        BatchNormKernel.forwardEval(z: z, channels: channels, gamma: makeTensor([channels], p.gamma), beta: makeTensor([channels], p.beta),
                                    runningMean: makeTensor([channels], p.runningMean), runningVar: makeTensor([channels], p.runningVar), out: out)
        let expected = p.z.indices.map { i -> Rounded in
            let c = (i / spatial) % channels
            let s = Rounded(exact: p.gamma[c]) / (Rounded(exact: p.runningVar[c]) + Self.epsilon).squareRoot()
            let shift = Rounded(exact: p.beta[c]) - Rounded(exact: p.runningMean[c]) * s
            return Rounded(exact: p.z[i]) * s + shift
        }
        let definition = Reference.batchNormEval(p.z, channels: channels, spatial: spatial, gamma: p.gamma, beta: p.beta,
                                                 runningMean: p.runningMean, runningVar: p.runningVar)
        XCTAssertNil(RoundingBound.violation(definition, expected.map { Rounded(exact: $0.exact, error: 1e-12) }), "model vs Reference")
        assertWithinBound(out.doubles, expected, "eval out")
        XCTAssertEqual(z.doubles, p.z, "eval must not modify its input when out is another tensor")
        // Broken variant: epsilon left out of the square root (a relative change of ~1e-5 / rv).
        let noEpsilon = Reference.batchNormEval(p.z, channels: channels, spatial: spatial, gamma: p.gamma, beta: p.beta,
                                                runningMean: p.runningMean, runningVar: p.runningVar, epsilon: 0)
        assertBoundCatches(noEpsilon, expected, "eval without epsilon")
    }

    /// L = sum(BN(z) * R). The kernel's dz, dgamma, dbeta against a rounding model of its
    /// computation (dz = gamma invstd / N (N dy - sum dy - x-hat sum(dy x-hat))); the model's
    /// exact values against central differences of the Float64 reference in the finite-difference
    /// metric (`FiniteDifference.bound`).
    func testBackwardMatchesFiniteDifferences() {
        for spatial in [1, 3] {
            let p = inputs(spatial: spatial, seed: 41 + UInt64(spatial))
            var random = TestRandom(seed: 51 + UInt64(spatial))
            let r = random.uniform(batch * channels * spatial)
            func loss(_ z: [Double], _ gamma: [Double], _ beta: [Double]) -> Double {
                dot(Reference.batchNormTraining(z, batch: batch, channels: channels, spatial: spatial, gamma: gamma, beta: beta).out, r)
            }
            let shape = [batch, channels, spatial]
            let z = makeTensor(shape, p.z), out = zeros(shape), gamma = makeTensor([channels], p.gamma)
            let mean = zeros([channels]), invStd = zeros([channels])
            BatchNormKernel.forwardTraining(z: z, channels: channels, gamma: gamma, beta: makeTensor([channels], p.beta),
                                            runningMean: nil, runningVar: nil, mean: mean, invStd: invStd, out: out)
            let grad = makeTensor(shape, r), dgamma = zeros([channels]), dbeta = zeros([channels])
            BatchNormKernel.backward(grad: grad, xhat: z, channels: channels, gamma: gamma, invStd: invStd,
                                     gammaGrad: dgamma, betaGrad: dbeta, scratch: zeros([2 * channels]))

            // The model, on the forward model's x-hat and invstd (their errors carried along).
            let forward = trainingModel(p, spatial: spatial)
            let n = Rounded(exact: Double(batch * spatial))
            var dz = p.z.map { Rounded(exact: $0) }, sumDy: [Rounded] = [], sumDyX: [Rounded] = []
            for c in 0..<channels {
                let indices = p.z.indices.filter { ($0 / spatial) % channels == c }
                let dy = indices.map { Rounded(exact: r[$0]) }
                let sd = Rounded.sum(dy), sdx = Rounded.dot(dy, indices.map { forward.xhat[$0] })
                let g = Rounded(exact: p.gamma[c]), s = forward.invStd[c]
                sumDy.append(sd)
                sumDyX.append(sdx)
                if spatial == 1 {
                    let scale = g * s / n, sdScaled = sd * scale, sdxScaled = sdx * scale
                    for i in indices { dz[i] = (g * s * Rounded(exact: r[i]) - sdScaled) - forward.xhat[i] * sdxScaled }
                } else {
                    let scale = g * s / n
                    for i in indices { dz[i] = scale * ((n * Rounded(exact: r[i]) - sd) - forward.xhat[i] * sdx) }
                }
            }
            assertWithinBound(grad.doubles, dz, "dz, S=\(spatial)")
            assertWithinBound(dgamma.doubles, sumDyX, "dgamma, S=\(spatial)")
            assertWithinBound(dbeta.doubles, sumDy, "dbeta, S=\(spatial)")
            // Broken variant: dz without the x-hat sum(dy x-hat) term (the variance's share).
            let noVarianceTerm = p.z.indices.map { i -> Double in
                let c = (i / spatial) % channels
                return p.gamma[c] * forward.invStd[c].exact / n.exact * (n.exact * r[i] - sumDy[c].exact)
            }
            assertBoundCatches(noVarianceTerm, dz, "dz without the variance term, S=\(spatial)")

            // The formula is the derivative: finite differences of the Float64 reference at
            // h = 1e-6. |f'''| stays below 1e3 here (each derivative of x-hat brings a factor
            // invstd < 1.5, with N <= 12 and |R| < 1); one evaluation sums ~20 N C rounded
            // operations of magnitude sum |R out| < 30.
            let fd = FiniteDifference.bound(step: 1e-6, thirdDerivative: 1e3, terms: 20 * p.z.count, absoluteSum: 30)
            FiniteDifference.assertMatches(dz.map(\.exact), numericalGradient(at: p.z) { loss($0, p.gamma, p.beta) }, bound: fd, "dz formula, S=\(spatial)")
            FiniteDifference.assertMatches(sumDyX.map(\.exact), numericalGradient(at: p.gamma) { loss(p.z, $0, p.beta) }, bound: fd, "dgamma formula, S=\(spatial)")
            FiniteDifference.assertMatches(sumDy.map(\.exact), numericalGradient(at: p.beta) { loss(p.z, p.gamma, $0) }, bound: fd, "dbeta formula, S=\(spatial)")

            // accumulate: true adds the same dgamma, dbeta onto what is there.
            let grad2 = makeTensor(shape, r)
            BatchNormKernel.backward(grad: grad2, xhat: z, channels: channels, gamma: gamma, invStd: invStd,
                                     gammaGrad: dgamma, betaGrad: dbeta, scratch: zeros([2 * channels]), accumulate: true)
            assertWithinBound(dgamma.doubles, sumDyX.map { $0 + $0 }, "accumulated dgamma")
            assertWithinBound(dbeta.doubles, sumDy.map { $0 + $0 }, "accumulated dbeta")
        }
    }
}
