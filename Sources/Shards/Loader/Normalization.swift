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
    /// one temporary block buffer (freed before returning); see `PixelStatistics`.
    public static func compute(source: RecordBlockSource, ledger: Ledger = .shared) throws -> Normalization {
        var statistics = try PixelStatistics(schema: source.schema)
        let decoder = try source.makeDecoder()
        let block = TrackedBuffer<UInt8>(count: source.maxBlockBytes, category: .loader, layer: nil,
                                         label: "loader.statisticsBlock", ledger: ledger)
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
            statistics.add(UnsafeRawBufferPointer(start: block.pointer, count: records * statistics.layout.recordSize))
        }
        guard let result = statistics.normalization else {
            throw LoaderError.invalidConfig("cannot compute mean and std of an empty split; give them in the configuration")
        }
        return result
    }
}

/// Per-channel pixel statistics accumulated over whole records as they stream by (the
/// converter's pass, or `Normalization.compute`). uint8 images are counted in a per-channel
/// histogram, so the result is exact and independent of the order; float32 images are summed
/// in Float64. The standard deviation is the population one (divide by N), as usually quoted.
public struct PixelStatistics {
    public let layout: ImageLayout
    private var histogram: [Int]
    private var sum: [Double]
    private var sumSquares: [Double]
    private var pixelCount = 0

    public init(schema: RecordSchema) throws {
        layout = try ImageLayout(schema: schema)
        histogram = [Int](repeating: 0, count: layout.pixelType == .uint8 ? 256 * layout.channels : 0)
        sum = [Double](repeating: 0, count: layout.channels)
        sumSquares = sum
    }

    /// Adds whole records (`records.count` a multiple of the record size).
    public mutating func add(_ records: UnsafeRawBufferPointer) {
        let channels = layout.channels
        let values = layout.height * layout.width * channels
        let count = records.count / layout.recordSize
        guard count > 0, let base = records.baseAddress else { return }
        for r in 0..<count {
            let image = base + (r &* layout.recordSize &+ layout.imageOffset)
            switch layout.pixelType {
            case .uint8:
                let pixels = image.assumingMemoryBound(to: UInt8.self)
                histogram.withUnsafeMutableBufferPointer { bins in
                    for p in 0..<values { bins[(p % channels) &* 256 &+ Int(pixels[p])] &+= 1 }
                }
            case .float32:
                for p in 0..<values {
                    let bits = image.loadUnaligned(fromByteOffset: p &* 4, as: UInt32.self)
                    let value = Double(Float(bitPattern: UInt32(littleEndian: bits)))
                    sum[p % channels] += value
                    sumSquares[p % channels] += value * value
                }
            }
        }
        pixelCount += count * layout.height * layout.width
    }

    /// Mean and std per channel in the scaled space (uint8 / 255), or nil before any record.
    public var normalization: Normalization? {
        guard pixelCount > 0 else { return nil }
        var sum = self.sum, sumSquares = self.sumSquares
        if layout.pixelType == .uint8 {
            for c in 0..<layout.channels {
                for v in 0..<256 {
                    let x = Double(v) / 255
                    sum[c] += Double(histogram[c * 256 + v]) * x
                    sumSquares[c] += Double(histogram[c * 256 + v]) * x * x
                }
            }
        }
        var mean = [Float](), std = [Float]()
        for c in 0..<layout.channels {
            let m = sum[c] / Double(pixelCount)
            let variance = max(sumSquares[c] / Double(pixelCount) - m * m, 0)
            mean.append(Float(m))
            // A constant channel would divide by zero; 1 leaves it centred and unscaled.
            std.append(variance > 0 ? Float(variance.squareRoot()) : 1)
        }
        return Normalization(mean: mean, std: std)
    }
}
