import MemoryLedger

/// Per-channel mean and standard deviation of the pixels in the scaled space (uint8 / 255, or
/// float32 as stored): a batch pixel is (x - mean[c]) / std[c].
public struct Normalization: Sendable, Equatable, Codable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// Fashion-MNIST's published values (the reference code's), one channel.
    public static let fashionMNIST = Normalization(mean: [0.286], std: [0.353])

    /// Expands one value per dataset to one per channel; checks the count otherwise.
    func perChannel(_ channels: Int) throws -> Normalization {
        func expand(_ values: [Float], _ name: String) throws -> [Float] {
            if values.count == channels { return values }
            if values.count == 1 { return Array(repeating: values[0], count: channels) }
            throw LoaderError.invalidConfig("\(name) has \(values.count) values for \(channels) channels")
        }
        return Normalization(mean: try expand(mean, "mean"), std: try expand(std, "std"))
    }

    /// Computes the statistics over every record of `source` with one sequential pass, through
    /// one temporary block buffer (freed before returning). uint8 images are counted in a
    /// per-channel histogram, so the result is exact; float32 images are summed in Float64.
    /// The standard deviation is the population one (divide by N), as usually quoted.
    public static func compute(source: RecordBlockSource, ledger: Ledger = .shared) throws -> Normalization {
        let layout = try ImageLayout(schema: source.schema)
        let decoder = try source.makeDecoder()
        let block = TrackedBuffer<UInt8>(count: source.maxBlockBytes, category: .loader, layer: nil,
                                         label: "loader.statisticsBlock", ledger: ledger)
        let channels = layout.channels
        let pixelsPerChannel = layout.height * layout.width
        var histogram = [Int](repeating: 0, count: 256 * channels)
        var sum = [Double](repeating: 0, count: channels)
        var sumSquares = [Double](repeating: 0, count: channels)
        var pixelCount = 0
        for index in 0..<source.blockCount {
            let records: Int
            do {
                records = try decoder.decode(block: index, into: UnsafeMutableRawBufferPointer(start: block.pointer, count: block.count))
            } catch {
                throw LoaderError.decodeFailed(block: index, underlying: error)
            }
            guard records == source.recordCount(ofBlock: index) else {
                throw LoaderError.recordCountMismatch(block: index, expected: source.recordCount(ofBlock: index), decoded: records)
            }
            let base = UnsafeRawPointer(block.pointer)
            for r in 0..<records {
                let image = base + (r &* layout.recordSize &+ layout.imageOffset)
                switch layout.pixelType {
                case .uint8:
                    let pixels = image.assumingMemoryBound(to: UInt8.self)
                    histogram.withUnsafeMutableBufferPointer { bins in
                        for p in 0..<(pixelsPerChannel &* channels) {
                            bins[(p % channels) &* 256 &+ Int(pixels[p])] &+= 1
                        }
                    }
                case .float32:
                    for p in 0..<(pixelsPerChannel &* channels) {
                        let bits = image.loadUnaligned(fromByteOffset: p &* 4, as: UInt32.self)
                        let value = Double(Float(bitPattern: UInt32(littleEndian: bits)))
                        sum[p % channels] += value
                        sumSquares[p % channels] += value * value
                    }
                }
            }
            pixelCount += records * pixelsPerChannel
        }
        guard pixelCount > 0 else {
            throw LoaderError.invalidConfig("cannot compute mean and std of an empty split; give them in the configuration")
        }
        if layout.pixelType == .uint8 {
            for c in 0..<channels {
                for v in 0..<256 {
                    let x = Double(v) / 255
                    sum[c] += Double(histogram[c * 256 + v]) * x
                    sumSquares[c] += Double(histogram[c * 256 + v]) * x * x
                }
            }
        }
        var mean = [Float](), std = [Float]()
        for c in 0..<channels {
            let m = sum[c] / Double(pixelCount)
            let variance = max(sumSquares[c] / Double(pixelCount) - m * m, 0)
            mean.append(Float(m))
            // A constant channel would divide by zero; 1 leaves it centred and unscaled.
            std.append(variance > 0 ? Float(variance.squareRoot()) : 1)
        }
        return Normalization(mean: mean, std: std)
    }
}
