import NumericTestSupport
import Tensors
import XCTest

/// BatchNormKernel over (B, C, S): training forward (batch statistics, biased variance),
/// running statistics (momentum 0.1, unbiased variance), evaluation forward, backward.
final class BatchNormKernelTests: XCTestCase {
    let batch = 4, channels = 3

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

    func testTrainingForwardAndRunningStatisticsMatchReference() {
        for spatial in [1, 3] {
            let p = inputs(spatial: spatial, seed: 31 + UInt64(spatial))
            let z = makeTensor([batch, channels, spatial], p.z), out = zeros([batch, channels, spatial])
            let rm = makeTensor([channels], p.runningMean), rv = makeTensor([channels], p.runningVar)
            let mean = zeros([channels]), invStd = zeros([channels])
            BatchNormKernel.forwardTraining(z: z, channels: channels, gamma: makeTensor([channels], p.gamma),
                                            beta: makeTensor([channels], p.beta), runningMean: rm, runningVar: rv,
                                            mean: mean, invStd: invStd, out: out)
            let ref = Reference.batchNormTraining(p.z, batch: batch, channels: channels, spatial: spatial, gamma: p.gamma, beta: p.beta)
            assertClose(out.doubles, ref.out, tolerance: 1e-5, "out, S=\(spatial)")
            assertClose(mean.doubles, ref.mean, tolerance: 1e-6, "mean, S=\(spatial)")
            assertClose(invStd.doubles, ref.biasedVariance.map { 1 / ($0 + 1e-5).squareRoot() }, tolerance: 1e-5, "invStd (biased), S=\(spatial)")
            // z now holds x-hat = (z - mean) * invstd
            let xhat = p.z.indices.map { i -> Double in
                let c = (i / spatial) % channels
                return (p.z[i] - ref.mean[c]) / (ref.biasedVariance[c] + 1e-5).squareRoot()
            }
            assertClose(z.doubles, xhat, tolerance: 1e-5, "x-hat, S=\(spatial)")
            let expectedMean = (0..<channels).map { 0.9 * p.runningMean[$0] + 0.1 * ref.mean[$0] }
            let expectedVar = (0..<channels).map { 0.9 * p.runningVar[$0] + 0.1 * ref.unbiasedVariance[$0] }
            assertClose(rm.doubles, expectedMean, tolerance: 1e-6, "running mean, S=\(spatial)")
            assertClose(rv.doubles, expectedVar, tolerance: 1e-6, "running var (unbiased), S=\(spatial)")
            // The unbiased and biased variances differ by N/(N-1): make sure the test can tell them apart.
            let n = Double(batch * spatial)
            XCTAssertGreaterThan(abs(expectedVar[0] - (0.9 * p.runningVar[0] + 0.1 * ref.biasedVariance[0])), 1e-3 / n)
        }
    }

    func testEvalForwardUsesRunningStatistics() {
        let spatial = 3
        let p = inputs(spatial: spatial, seed: 35)
        let z = makeTensor([batch, channels, spatial], p.z), out = zeros([batch, channels, spatial])
        BatchNormKernel.forwardEval(z: z, channels: channels, gamma: makeTensor([channels], p.gamma), beta: makeTensor([channels], p.beta),
                                    runningMean: makeTensor([channels], p.runningMean), runningVar: makeTensor([channels], p.runningVar), out: out)
        let expected = Reference.batchNormEval(p.z, channels: channels, spatial: spatial, gamma: p.gamma, beta: p.beta,
                                               runningMean: p.runningMean, runningVar: p.runningVar)
        assertClose(out.doubles, expected, tolerance: 1e-5, "eval out")
        XCTAssertEqual(z.doubles, p.z, "eval must not modify its input when out is another tensor")
    }

    /// L = sum(BN(z) * R): dz, dgamma, dbeta against finite differences of the Float64 reference.
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
            let nz = numericalGradient(at: p.z) { loss($0, p.gamma, p.beta) }
            let ngamma = numericalGradient(at: p.gamma) { loss(p.z, $0, p.beta) }
            let nbeta = numericalGradient(at: p.beta) { loss(p.z, p.gamma, $0) }
            assertGradientsMatch(grad.doubles, nz, "dz, S=\(spatial)")
            assertGradientsMatch(dgamma.doubles, ngamma, "dgamma, S=\(spatial)")
            assertGradientsMatch(dbeta.doubles, nbeta, "dbeta, S=\(spatial)")
            assertMutationDetected(grad.doubles, nz, "dz, S=\(spatial)")

            // accumulate: true adds the same dgamma, dbeta onto what is there.
            let grad2 = makeTensor(shape, r)
            BatchNormKernel.backward(grad: grad2, xhat: z, channels: channels, gamma: gamma, invStd: invStd,
                                     gammaGrad: dgamma, betaGrad: dbeta, scratch: zeros([2 * channels]), accumulate: true)
            assertClose(dgamma.doubles, ngamma.map { 2 * $0 }, tolerance: 1e-4, "accumulated dgamma")
            assertClose(dbeta.doubles, nbeta.map { 2 * $0 }, tolerance: 1e-4, "accumulated dbeta")
        }
    }
}
