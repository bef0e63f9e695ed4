/// im2col and its adjoint col2im for one image, stride 1, symmetric zero padding.
///
/// The column matrix of one image is (C k k, H' W'): row r = (c k + i) k + j holds, for every
/// output position (oh, ow), the input x[c, oh + i - p, ow + j - p] (0 outside the image). Its
/// rows are `rowStride` floats apart, so the matrices of several images can sit side by side in
/// one (C k k, n H' W') matrix: image g's block starts at column g H' W'. Within a row
/// the valid output columns of one output row form one contiguous run of the input row, so both
/// loops are runs of straight copies/adds with the zero borders handled once per row.
enum Im2col {
    /// The output columns ow whose input column ow + j - p lies inside [0, W).
    @inline(__always)
    static func validColumns(_ g: ConvGeometry, _ j: Int) -> (low: Int, high: Int) {
        let low = max(0, g.padding &- j)
        let high = min(g.outWidth, g.width &+ g.padding &- j)
        return (low, max(low, high))
    }

    /// x: (C, H, W) of one image -> columns: (C k k, H' W') with rows `rowStride` apart.
    static func im2col(_ g: ConvGeometry, image x: UnsafePointer<Float>, columns: UnsafeMutablePointer<Float>,
                       rowStride: Int) {
        let k = g.kernel, p = g.padding, h = g.height, w = g.width
        let outH = g.outHeight, outW = g.outWidth, inSpatial = g.inSpatial
        var row = columns
        for c in 0..<g.inChannels {
            let plane = x + c &* inSpatial
            for i in 0..<k {
                for j in 0..<k {
                    var dst = row
                    row += rowStride
                    let (low, high) = validColumns(g, j)
                    let shift = j &- p   // input column = ow + shift
                    for oh in 0..<outH {
                        let ih = oh &+ i &- p
                        if ih < 0 || ih >= h {
                            for t in 0..<outW { dst[t] = 0 }
                        } else {
                            let src = plane + (ih &* w &+ shift)
                            for t in 0..<low { dst[t] = 0 }
                            for t in low..<high { dst[t] = src[t] }
                            for t in high..<outW { dst[t] = 0 }
                        }
                        dst += outW
                    }
                }
            }
        }
    }

    /// Adjoint of `im2col`: dx (C, H, W) += fold(columns (C k k, H' W')). Entries of `columns`
    /// that fall into the padding are dropped.
    static func col2imAdd(_ g: ConvGeometry, columns: UnsafePointer<Float>, rowStride: Int,
                          image dx: UnsafeMutablePointer<Float>) {
        let k = g.kernel, p = g.padding, h = g.height, w = g.width
        let outH = g.outHeight, outW = g.outWidth, inSpatial = g.inSpatial
        var row = columns
        for c in 0..<g.inChannels {
            let plane = dx + c &* inSpatial
            for i in 0..<k {
                for j in 0..<k {
                    var src = row
                    row += rowStride
                    let (low, high) = validColumns(g, j)
                    let shift = j &- p
                    for oh in 0..<outH {
                        let ih = oh &+ i &- p
                        if ih >= 0 && ih < h {
                            let dst = plane + (ih &* w &+ shift)
                            for t in low..<high { dst[t] += src[t] }
                        }
                        src += outW
                    }
                }
            }
        }
    }
}
