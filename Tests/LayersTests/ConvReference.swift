import NumericTestSupport

/// Plain-loop Float64 references of the conv pieces (DESIGN.md section 2), written from the
/// definitions rather than from the kernels: NCHW layouts, row-major [Double].
enum ConvReference {
    /// y (B, OC, H, W) = conv3x3(x (B, C, H, W), w (OC, C, 3, 3)), stride 1, zero padding 1, + bias.
    static func conv3x3(_ x: [Double], batch: Int, channels c: Int, height h: Int, width w: Int,
                        weight: [Double], outChannels oc: Int, bias: [Double]?) -> [Double] {
        precondition(x.count == batch * c * h * w && weight.count == oc * c * 9)
        var y = [Double](repeating: 0, count: batch * oc * h * w)
        for b in 0..<batch {
            for o in 0..<oc {
                for r in 0..<h {
                    for s in 0..<w {
                        var sum = bias?[o] ?? 0
                        for i in 0..<c {
                            for kr in 0..<3 {
                                let ir = r + kr - 1
                                if ir < 0 || ir >= h { continue }
                                for ks in 0..<3 {
                                    let isx = s + ks - 1
                                    if isx < 0 || isx >= w { continue }
                                    sum += weight[((o * c + i) * 3 + kr) * 3 + ks] * x[((b * c + i) * h + ir) * w + isx]
                                }
                            }
                        }
                        y[((b * oc + o) * h + r) * w + s] = sum
                    }
                }
            }
        }
        return y
    }

    /// Average pooling, stride = kernel, zero padding counted in every average, floor mode:
    /// (planes, H, W) -> (planes, (H + 2ph - kh) / kh + 1, (W + 2pw - kw) / kw + 1).
    static func avgPool(_ x: [Double], planes: Int, height h: Int, width w: Int,
                        kernel: (Int, Int), padding: (Int, Int)) -> (out: [Double], height: Int, width: Int) {
        let (kh, kw) = kernel, (ph, pw) = padding
        let oh = (h + 2 * ph - kh) / kh + 1, ow = (w + 2 * pw - kw) / kw + 1
        var y = [Double](repeating: 0, count: planes * oh * ow)
        for p in 0..<planes {
            for r in 0..<oh {
                for s in 0..<ow {
                    var sum = 0.0
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let ir = r * kh - ph + i, isx = s * kw - pw + j
                            if ir >= 0 && ir < h && isx >= 0 && isx < w { sum += x[(p * h + ir) * w + isx] }
                        }
                    }
                    y[(p * oh + r) * ow + s] = sum / Double(kh * kw)
                }
            }
        }
        return (y, oh, ow)
    }

    /// Max pooling 2x2, stride 2, floor mode: (planes, H, W) -> (planes, H / 2, W / 2).
    static func maxPool2x2(_ x: [Double], planes: Int, height h: Int, width w: Int) -> [Double] {
        let oh = h / 2, ow = w / 2
        var y = [Double](repeating: 0, count: planes * oh * ow)
        for p in 0..<planes {
            for r in 0..<oh {
                for s in 0..<ow {
                    var m = -Double.infinity
                    for i in 0..<2 { for j in 0..<2 { m = max(m, x[(p * h + 2 * r + i) * w + 2 * s + j]) } }
                    y[(p * oh + r) * ow + s] = m
                }
            }
        }
        return y
    }

    /// Unbiased standard deviation over each plane of n values: (planes * n) -> (planes).
    static func spatialStd(_ x: [Double], planes: Int, positions n: Int) -> [Double] {
        (0..<planes).map { p in
            let v = x[(p * n)..<((p + 1) * n)]
            let mean = v.reduce(0, +) / Double(n)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)).squareRoot()
        }
    }

    /// The reference code's `similarity_matrix` input for a (B, C, H, W) map: the per-channel
    /// spatial std (B, C) when C > 3 and H > 1, else the map flattened (B, C H W).
    static func simFeatures(_ x: [Double], batch: Int, channels c: Int, height h: Int, width w: Int) -> [Double] {
        c > 3 && h > 1 ? spatialStd(x, planes: batch * c, positions: h * w) : x
    }

    /// Training-mode conv block: leakyrelu(BN over (B, H, W)(conv3x3(x) + b)), slope 0 for ReLU.
    static func convBlockH(_ x: [Double], batch: Int, inChannels c: Int, height h: Int, width w: Int,
                           weight: [Double], bias: [Double], gamma: [Double], beta: [Double], slope: Double) -> [Double] {
        let oc = gamma.count
        let z = conv3x3(x, batch: batch, channels: c, height: h, width: w, weight: weight, outChannels: oc, bias: bias)
        let bn = Reference.batchNormTraining(z, batch: batch, channels: oc, spatial: h * w, gamma: gamma, beta: beta)
        return Reference.leakyRelu(bn.out, slope: slope)
    }
}
