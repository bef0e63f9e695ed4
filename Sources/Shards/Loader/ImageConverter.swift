import MemoryLedger
import Randomness

/// Turns one stored HWC image into normalised float CHW, with the optional crop and flip.
///
/// uint8 pixels go through a per-channel table of the 256 normalised values, so the inner loop
/// is a load and a lookup; raw 0 (the crop padding) is entry 0 of that table, which is how the
/// padding comes out as (0 - mean) / std, as in torchvision where the padding happens before
/// Normalize.
final class ImageConverter {
    let layout: ImageLayout
    let normalization: Normalization
    let augmentation: Augmentation?
    /// uint8: 256 floats per channel. float32: per channel (scale, shift) = (1/std, -mean/std).
    private let table: TrackedBuffer<Float>
    /// Declared last so it is released after `table` (buffers refer to their ledger unowned).
    private let ledger: Ledger

    init(layout: ImageLayout, normalization: Normalization, augmentation: Augmentation?, ledger: Ledger) {
        self.layout = layout
        self.normalization = normalization
        self.augmentation = augmentation
        self.ledger = ledger
        let channels = layout.channels
        switch layout.pixelType {
        case .uint8:
            table = TrackedBuffer<Float>(count: 256 * channels, category: .loader, layer: nil, label: "loader.pixelTable", ledger: ledger)
            for c in 0..<channels {
                for v in 0..<256 {
                    table.pointer[c * 256 + v] = (Float(v) / 255 - normalization.mean[c]) / normalization.std[c]
                }
            }
        case .float32:
            table = TrackedBuffer<Float>(count: 2 * channels, category: .loader, layer: nil, label: "loader.pixelTable", ledger: ledger)
            for c in 0..<channels {
                table.pointer[2 * c] = 1 / normalization.std[c]
                table.pointer[2 * c + 1] = -normalization.mean[c] / normalization.std[c]
            }
        }
    }

    /// The crop offsets (0...2 x padding, in padded coordinates) and flip for the record at
    /// `position` of `epoch`: a pure function of (seed, epoch, position).
    static func augmentationChoice(_ augmentation: Augmentation, seed: UInt64, epoch: Int, position: Int)
        -> (top: Int, left: Int, flip: Bool) {
        var generator = Xoshiro256(seed: LoaderSeeds.augmentation(seed: seed, epoch: epoch, position: position))
        let span = 2 * augmentation.cropPadding + 1
        let top = augmentation.cropPadding > 0 ? generator.next(below: span) : 0
        let left = augmentation.cropPadding > 0 ? generator.next(below: span) : 0
        let flip = augmentation.horizontalFlip ? (generator.next() >> 63) == 1 : false
        return (top, left, flip)
    }

    /// Writes the image of `record` to `output` as (C, H, W).
    /// With augmentation, out[c][y][x] = padded[c][y + top][x' + left] where x' = W-1-x when
    /// flipped, else x, and padded is the image with `cropPadding` zero pixels on every side.
    func convert(record: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>, seed: UInt64, epoch: Int, position: Int) {
        if let augmentation {
            let choice = ImageConverter.augmentationChoice(augmentation, seed: seed, epoch: epoch, position: position)
            convert(record: record, into: output, padding: augmentation.cropPadding, top: choice.top, left: choice.left, flip: choice.flip)
        } else {
            convert(record: record, into: output, padding: 0, top: 0, left: 0, flip: false)
        }
    }

    /// The conversion with the crop and flip given explicitly (the tests check it by hand).
    func convert(record: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>,
                 padding: Int, top: Int, left: Int, flip: Bool) {
        let height = layout.height, width = layout.width, channels = layout.channels
        let image = record + layout.imageOffset
        let table = UnsafePointer(self.table.pointer)
        // Source column of output column x is x * step + base (step -1 flips). Columns outside
        // the image are padding; they form one run at each end of the row, so the loops below
        // only visit [firstX, endX) and need no bounds test per pixel.
        let step = flip ? -1 : 1
        let base = (flip ? width - 1 : 0) + left - padding
        let firstX = flip ? max(0, base - width + 1) : max(0, -base)
        let endX = max(firstX, flip ? min(width, base + 1) : min(width, width - base))
        for c in 0..<channels {
            let plane = output + c &* height &* width
            for y in 0..<height {
                let row = plane + y &* width
                let sourceY = y &+ top &- padding
                switch layout.pixelType {
                case .uint8:
                    let lookup = table + c &* 256
                    guard sourceY >= 0 && sourceY < height else {
                        row.update(repeating: lookup[0], count: width)
                        continue
                    }
                    let sourceRow = image.assumingMemoryBound(to: UInt8.self) + ((sourceY &* width) &* channels &+ c)
                    let pad = lookup[0]
                    for x in 0..<firstX { row[x] = pad }
                    if step == 1 && channels == 1 {
                        // The common case (grey, not flipped): a straight shifted lookup.
                        let shifted = sourceRow + base
                        for x in firstX..<endX { row[x] = lookup[Int(shifted[x])] }
                    } else {
                        for x in firstX..<endX { row[x] = lookup[Int(sourceRow[(x &* step &+ base) &* channels])] }
                    }
                    for x in endX..<width { row[x] = pad }
                case .float32:
                    let scale = table[2 &* c], shift = table[2 &* c &+ 1]
                    guard sourceY >= 0 && sourceY < height else {
                        row.update(repeating: shift, count: width)
                        continue
                    }
                    let rowOffset = ((sourceY &* width) &* channels &+ c) &* 4
                    for x in 0..<firstX { row[x] = shift }
                    for x in firstX..<endX {
                        let sourceX = x &* step &+ base
                        let bits = image.loadUnaligned(fromByteOffset: rowOffset &+ sourceX &* channels &* 4, as: UInt32.self)
                        row[x] = Float(bitPattern: UInt32(littleEndian: bits)) * scale + shift
                    }
                    for x in endX..<width { row[x] = shift }
                }
            }
        }
    }
}
