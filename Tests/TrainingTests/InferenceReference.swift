import Foundation
import Layers
import Tensors

/// A Float64 forward pass of the inference model (3x3 convs, BatchNorm with running statistics,
/// nonlinearity, 2x2 max pooling, Linear blocks, output layer), written from the definitions
/// over the named Float32 parameters, with a rigorous bound on how far any Float32 evaluation
/// of the same model may be from it.
///
/// The bound follows the standard forward error analysis (Higham, Accuracy and Stability of
/// Numerical Algorithms, 3.1), u = 2^-24, gamma_n = n u / (1 - n u):
/// - a map's output y = b + sum_i w_i x_i over K terms, computed in Float32 in any order (any
///   GEMM blocking, any conv engine, FMA or not) from inputs x^ with |x^ - x| <= e, differs from
///   the exact y by at most  sum |w_i| e_i + gamma_(K+1) (|b| + sum |w_i| (|x_i| + e_i));
/// - BatchNorm in evaluation, out = fl(fl(z^ s) + t) with s and t rounded once from the running
///   statistics: at most |s| e_z + u ((2 + u) |s| (|z| + e_z) + |t|) + u (|beta| + |mean s|), the
///   last term covering t computed with or without a fused multiply-add;
/// - ReLU and LeakyReLU are 1-Lipschitz (LeakyReLU adds u 0.01 (|v| + e) for its product) and
///   max pooling is 1-Lipschitz and exact, so they carry the bound through.
/// The reference itself runs in Float64, whose own rounding adds the same formula with 2^-53;
/// it is included. Two Float32 evaluations therefore differ by at most twice the bound.
struct InferenceReference {
    let spec: ModelSpec
    let tensors: [String: [Float]]

    static let u32 = pow(2.0, -24.0)
    static let u64 = pow(2.0, -53.0)
    static func gamma(_ n: Int) -> Double {
        Double(n) * u32 / (1 - Double(n) * u32) + Double(n) * u64 / (1 - Double(n) * u64)
    }

    /// Exact logits of one example (C H W values, NCHW order) and the bound of each.
    func logits(_ image: ArraySlice<Float>) -> (exact: [Double], bound: [Double]) {
        var v = image.map(Double.init), e = [Double](repeating: 0, count: image.count)
        var c = spec.inputShape[0], h = spec.inputShape[1], w = spec.inputShape[2]
        for (k, block) in spec.convBlocks.enumerated() {
            (v, e) = conv(k, v, e, channels: c, outChannels: block.outChannels, height: h, width: w)
            c = block.outChannels
            (v, e) = normalize(k, v, e, channels: c, spatial: h * w)
            if block.poolAfter {
                (v, e) = maxPool(v, e, planes: c, height: h, width: w)
                h /= 2
                w /= 2
            }
        }
        for i in 0..<spec.linearBlockCount {
            let k = spec.convBlocks.count + i
            (v, e) = linear("blocks.\(k).linear", v, e, outFeatures: spec.numHidden)
            (v, e) = normalize(k, v, e, channels: spec.numHidden, spatial: 1)
        }
        return linear("output", v, e, outFeatures: spec.classes)
    }

    private func conv(_ k: Int, _ x: [Double], _ ex: [Double], channels c: Int, outChannels oc: Int,
                      height h: Int, width w: Int) -> ([Double], [Double]) {
        let weight = tensors["blocks.\(k).conv.weight"]!, bias = tensors["blocks.\(k).conv.bias"]!
        let g = InferenceReference.gamma(c * 9 + 1)
        var y = [Double](repeating: 0, count: oc * h * w), ey = y
        for o in 0..<oc {
            for r in 0..<h {
                for s in 0..<w {
                    var sum = Double(bias[o]), magnitude = abs(Double(bias[o])), carried = 0.0
                    for i in 0..<c {
                        for kr in 0..<3 where r + kr - 1 >= 0 && r + kr - 1 < h {
                            for ks in 0..<3 where s + ks - 1 >= 0 && s + ks - 1 < w {
                                let wv = Double(weight[((o * c + i) * 3 + kr) * 3 + ks])
                                let xi = (i * h + r + kr - 1) * w + s + ks - 1
                                sum += wv * x[xi]
                                magnitude += abs(wv) * (abs(x[xi]) + ex[xi])
                                carried += abs(wv) * ex[xi]
                            }
                        }
                    }
                    y[(o * h + r) * w + s] = sum
                    ey[(o * h + r) * w + s] = carried + g * magnitude
                }
            }
        }
        return (y, ey)
    }

    private func linear(_ prefix: String, _ x: [Double], _ ex: [Double], outFeatures: Int) -> ([Double], [Double]) {
        let weight = tensors["\(prefix).weight"]!, bias = tensors["\(prefix).bias"]!
        let inFeatures = x.count, g = InferenceReference.gamma(inFeatures + 1)
        var y = [Double](repeating: 0, count: outFeatures), ey = y
        for o in 0..<outFeatures {
            var sum = Double(bias[o]), magnitude = abs(Double(bias[o])), carried = 0.0
            for i in 0..<inFeatures {
                let wv = Double(weight[o * inFeatures + i])
                sum += wv * x[i]
                magnitude += abs(wv) * (abs(x[i]) + ex[i])
                carried += abs(wv) * ex[i]
            }
            y[o] = sum
            ey[o] = carried + g * magnitude
        }
        return (y, ey)
    }

    /// BatchNorm with running statistics, then the nonlinearity.
    private func normalize(_ k: Int, _ z: [Double], _ ez: [Double], channels: Int, spatial: Int) -> ([Double], [Double]) {
        let gamma = tensors["blocks.\(k).bn.weight"]!, beta = tensors["blocks.\(k).bn.bias"]!
        let mean = tensors["blocks.\(k).bn.running_mean"]!, variance = tensors["blocks.\(k).bn.running_var"]!
        let u = InferenceReference.u32, slope = Double(spec.nonlinearity.negativeSlope)
        var out = z, eout = ez
        for i in z.indices {
            let c = (i / spatial) % channels
            // s and t as Float32 computes them: one correctly rounded division and square root.
            let s: Float = gamma[c] / (variance[c] + BatchNormKernel.epsilon).squareRoot()
            let t: Float = beta[c] - mean[c] * s
            let sd = Double(s), td = Double(t)
            let v = z[i] * sd + td
            var e = abs(sd) * ez[i] + u * ((2 + u) * abs(sd) * (abs(z[i]) + ez[i]) + abs(td))
                + u * (abs(Double(beta[c])) + abs(Double(mean[c]) * sd))
            if slope > 0 { e += u * slope * (abs(v) + e) }
            out[i] = v > 0 ? v : slope * v
            eout[i] = e
        }
        return (out, eout)
    }

    private func maxPool(_ x: [Double], _ ex: [Double], planes: Int, height h: Int, width w: Int) -> ([Double], [Double]) {
        let oh = h / 2, ow = w / 2
        var y = [Double](repeating: 0, count: planes * oh * ow), ey = y
        for p in 0..<planes {
            for r in 0..<oh {
                for s in 0..<ow {
                    var best = -Double.infinity, bound = 0.0
                    for i in 0..<2 {
                        for j in 0..<2 {
                            let xi = (p * h + 2 * r + i) * w + 2 * s + j
                            best = max(best, x[xi])
                            bound = max(bound, ex[xi])
                        }
                    }
                    y[(p * oh + r) * ow + s] = best
                    ey[(p * oh + r) * ow + s] = bound
                }
            }
        }
        return (y, ey)
    }
}
