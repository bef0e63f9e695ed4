import Shards

/// A pair of NumPy `.npy` files: images [N, H, W] (stored as [H, W, 1]), [N, H, W, C], or
/// [N, D] features (stored as [1, 1, D] unless `shape` says otherwise), and labels [N] or [N, 1].
/// Images of dtype uint8 stay uint8; float32 and float64 become float32. Labels may be any
/// integer dtype and become int32. Arrays must be C order and little-endian.
public struct NPYInput: RecordInput {
    public let imagesPath: String
    public let labelsPath: String
    public let imageShape: [Int]
    public let imageType: FieldType
    public let recordCount: Int
    let images: NPYArray
    let labels: NPYArray

    /// - Parameter shape: the per-record shape to store, when the array's own does not say it
    ///   (for example [28, 28, 1] for [N, 784] features); its element count must match.
    public init(images imagesPath: String, labels labelsPath: String, shape: [Int]? = nil) throws {
        self.imagesPath = imagesPath
        self.labelsPath = labelsPath
        images = try NPYArray(path: imagesPath)
        labels = try NPYArray(path: labelsPath)
        func invalid(_ path: String, _ problem: String) -> ShardError { .invalidInput(file: path, problem: problem) }

        guard images.shape.count >= 2 else { throw invalid(imagesPath, "images must have a record dimension and at least one more; the shape is \(images.shape)") }
        switch (images.kind, images.itemSize) {
        case (.unsignedInt, 1): imageType = .uint8
        case (.float, 4), (.float, 8): imageType = .float32
        default: throw invalid(imagesPath, "image dtype '\(images.descr)' is not supported (use uint8, float32 or float64)")
        }
        guard labels.kind != .float else { throw invalid(labelsPath, "labels must be integers, not dtype '\(labels.descr)'") }
        guard labels.shape.count == 1 || (labels.shape.count == 2 && labels.shape[1] == 1) else {
            throw invalid(labelsPath, "labels must have shape [N] or [N, 1], not \(labels.shape)")
        }
        guard images.shape[0] == labels.shape[0] else {
            throw ShardError.countMismatch(file: imagesPath, count: images.shape[0], otherFile: labelsPath, otherCount: labels.shape[0])
        }
        recordCount = images.shape[0]
        let perRecord = Array(images.shape.dropFirst())
        let natural: [Int]
        switch perRecord.count {
        case 1: natural = [1, 1, perRecord[0]]
        case 2: natural = [perRecord[0], perRecord[1], 1]
        case 3: natural = perRecord
        default: throw invalid(imagesPath, "images of shape \(images.shape) have too many dimensions")
        }
        if let shape {
            guard shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == natural.reduce(1, *) else {
                throw ShardError.invalidOption(name: "shape", problem: "\(shape) does not hold the \(natural.reduce(1, *)) values of each record")
            }
            imageShape = shape
        } else {
            imageShape = natural
        }
    }

    public var fields: [Field] { imageFields(type: imageType, shape: imageShape) }

    public var provenance: SourceProvenance {
        SourceProvenance(format: "npy", files: [sourceFile(imagesPath), sourceFile(labelsPath)],
                         options: ["imageDtype": images.descr, "labelDtype": labels.descr])
    }

    public func labelFile(ofRecord index: Int) -> String { labelsPath }

    public func makeReader() throws -> RecordInputReader { try NPYReader(self) }
}

/// One pass over an NPY pair, converting elements record by record.
final class NPYReader: RecordInputReader {
    let input: NPYInput
    let images: InputFile
    let labels: InputFile
    let elements: Int
    let sourceImageBytes: Int
    var done = 0
    var scratch: [UInt8]

    init(_ input: NPYInput) throws {
        self.input = input
        images = try input.images.openData()
        labels = try input.labels.openData()
        elements = input.imageShape.reduce(1, *)
        sourceImageBytes = elements * input.images.itemSize
        scratch = [UInt8](repeating: 0, count: max(sourceImageBytes, 8))
    }

    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let recordSize = elements * input.imageType.size + 4
        let n = min(destination.count / recordSize, input.recordCount - done)
        let imagesTotal = input.images.dataOffset + input.recordCount * sourceImageBytes
        let labelsTotal = input.labels.dataOffset + input.recordCount * input.labels.itemSize
        for i in 0..<n {
            let slot = destination.baseAddress! + i * recordSize
            try scratch.withUnsafeMutableBytes { s in
                let src = UnsafeMutableRawBufferPointer(rebasing: s[0 ..< sourceImageBytes])
                switch (input.imageType, input.images.itemSize) {
                case (.uint8, _):
                    try images.readExactly(into: UnsafeMutableRawBufferPointer(start: slot, count: sourceImageBytes), expectedTotal: imagesTotal)
                case (_, 4):
                    try images.readExactly(into: UnsafeMutableRawBufferPointer(start: slot, count: sourceImageBytes), expectedTotal: imagesTotal)
                default:  // float64 -> float32
                    try images.readExactly(into: src, expectedTotal: imagesTotal)
                    for e in 0..<elements {
                        let v = Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: e * 8, as: UInt64.self)))
                        slot.storeBytes(of: Float(v).bitPattern.littleEndian, toByteOffset: e * 4, as: UInt32.self)
                    }
                }
                let labelBytes = UnsafeMutableRawBufferPointer(rebasing: s[0 ..< input.labels.itemSize])
                try labels.readExactly(into: labelBytes, expectedTotal: labelsTotal)
                let label = try labelValue(UnsafeRawBufferPointer(labelBytes), record: done + i)
                storeLabel(label, at: slot + elements * input.imageType.size)
            }
        }
        done += n
        return n
    }

    /// An integer label of any width as int32, refusing values that do not fit.
    private func labelValue(_ bytes: UnsafeRawBufferPointer, record: Int) throws -> Int32 {
        var raw: UInt64 = 0
        for k in 0..<bytes.count { raw |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        let value: Int64
        if input.labels.kind == .signedInt {
            let shift = UInt64(64 - 8 * bytes.count)
            value = Int64(bitPattern: raw << shift) >> Int64(shift)  // sign-extend
        } else {
            value = raw > UInt64(Int64.max) ? Int64.max : Int64(raw)
        }
        guard let label = Int32(exactly: value) else {
            throw ShardError.labelOutOfRange(file: input.labelsPath, record: record, label: Int(clamping: value), classCount: Int(Int32.max))
        }
        return label
    }
}
