import Shards

/// MNIST-style IDX files (plain or .gz): an images file (magic 0x00000803 for [N, H, W] or
/// 0x00000804 for [N, H, W, C], unsigned bytes) and a labels file (magic 0x00000801, [N]),
/// dimensions big-endian. Images of any size are stored as uint8 [H, W, C]. Bytes after the
/// last record of either file are an error (a truncated count or the wrong file), unless
/// `allowTrailingBytes` accepts them.
public struct IDXInput: RecordInput {
    public let imagesPath: String
    public let labelsPath: String
    public let imageShape: [Int]
    public let recordCount: Int
    /// Accept (and ignore) bytes after the last record instead of refusing the file.
    public let allowTrailingBytes: Bool
    let imagesHeaderBytes: Int

    /// Reads both headers and checks magic numbers, dimensions and that the counts agree.
    public init(images: String, labels: String, allowTrailingBytes: Bool = false) throws {
        imagesPath = images
        labelsPath = labels
        self.allowTrailingBytes = allowTrailingBytes
        let imageDims = try IDXInput.header(images, expectedRanks: [3, 4])
        let labelDims = try IDXInput.header(labels, expectedRanks: [1])
        guard imageDims[0] == labelDims[0] else {
            throw ShardError.countMismatch(file: images, count: imageDims[0], otherFile: labels, otherCount: labelDims[0])
        }
        recordCount = imageDims[0]
        imageShape = imageDims.count == 3 ? [imageDims[1], imageDims[2], 1] : Array(imageDims[1...])
        imagesHeaderBytes = 4 + 4 * imageDims.count
        // Each dimension is up to 2^32 - 1: multiply with overflow checks (three of them overflow Int).
        var imageBytes = 1
        for d in imageShape {
            let (product, overflow) = imageBytes.multipliedReportingOverflow(by: d)
            guard d > 0, !overflow, product <= 1 << 28 else {
                throw ShardError.invalidInput(file: images, problem: "image dimensions \(imageShape) are not usable (each must be at least 1, at most 2^28 bytes an image)")
            }
            imageBytes = product
        }
        // The payload the headers promise, checked now, before any record buffer is sized from
        // them: a file shorter than its header says is refused at open (a few bytes claiming a
        // 256 MiB image would otherwise ask for that much), and trailing bytes are seen even by a
        // conversion of only the first records (--take). Plain files by size, gzip files by
        // decompressing to the end of the payload (a conversion that reads to the end checks again).
        for (path, payload) in [(images, imagesHeaderBytes + recordCount * imageBytes), (labels, 8 + recordCount)] {
            let file = try InputFile(path: path)
            _ = try file.readExactly(1, expectedTotal: payload)
            if !file.isCompressed {
                if file.sizeOnDisk < payload {
                    throw ShardError.truncatedInput(file: path, expectedBytes: payload, actualBytes: file.sizeOnDisk)
                }
                if !allowTrailingBytes && file.sizeOnDisk > payload {
                    throw ShardError.trailingBytes(file: path, count: file.sizeOnDisk - payload, payloadBytes: payload)
                }
            } else {
                try file.skip(payload - 1, expectedTotal: payload)
                if !allowTrailingBytes { try IDXReader.refuseTrailingBytes(file, payload: payload) }
            }
        }
    }

    /// The dimensions in an IDX header, after checking magic (type 0x08 unsigned byte) and rank.
    static func header(_ path: String, expectedRanks: [Int]) throws -> [Int] {
        let file = try InputFile(path: path)
        let magic = try file.readExactly(4, expectedTotal: 4)
        let rank = Int(magic[3])
        guard magic[0] == 0, magic[1] == 0, magic[2] == 0x08, expectedRanks.contains(rank) else {
            let found = magic.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
            let wanted = expectedRanks.map { "00 00 08 0\($0)" }.joined(separator: " or ")
            throw ShardError.invalidInput(file: path, problem: "bad IDX magic: found bytes \(found), expected \(wanted) (unsigned-byte \(expectedRanks == [1] ? "labels" : "images"))")
        }
        let dimBytes = try file.readExactly(4 * rank, expectedTotal: 4 + 4 * rank)
        return (0..<rank).map { i in
            Int(dimBytes[4 * i]) << 24 | Int(dimBytes[4 * i + 1]) << 16 | Int(dimBytes[4 * i + 2]) << 8 | Int(dimBytes[4 * i + 3])
        }
    }

    public var fields: [Field] { imageFields(type: .uint8, shape: imageShape) }

    public var provenance: SourceProvenance {
        SourceProvenance(format: "idx", files: [sourceFile(imagesPath), sourceFile(labelsPath)])
    }

    public func labelFile(ofRecord index: Int) -> String { labelsPath }

    public func makeReader() throws -> RecordInputReader { try IDXReader(self) }
}

/// One pass over an IDX pair: image bytes and label bytes interleaved into records.
final class IDXReader: RecordInputReader {
    let input: IDXInput
    let images: InputFile
    let labels: InputFile
    let imageBytes: Int
    var done = 0
    var labelScratch: [UInt8] = []

    init(_ input: IDXInput) throws {
        self.input = input
        imageBytes = input.imageShape.reduce(1, *)
        images = try InputFile(path: input.imagesPath)
        labels = try InputFile(path: input.labelsPath)
        try images.skip(input.imagesHeaderBytes, expectedTotal: input.imagesHeaderBytes)
        try labels.skip(8, expectedTotal: 8)
    }

    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let recordSize = imageBytes + 4
        let n = min(destination.count / recordSize, input.recordCount - done)
        guard n > 0 else { return 0 }
        if labelScratch.count < n { labelScratch = [UInt8](repeating: 0, count: n) }
        try labelScratch.withUnsafeMutableBytes {
            try labels.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: $0[0 ..< n]), expectedTotal: 8 + input.recordCount)
        }
        // Read each image straight into its record slot; the label follows it.
        let base = destination.baseAddress!
        let imagesTotal = input.imagesHeaderBytes + input.recordCount * imageBytes
        for i in 0..<n {
            let slot = base + i * recordSize
            try images.readExactly(into: UnsafeMutableRawBufferPointer(start: slot, count: imageBytes), expectedTotal: imagesTotal)
            storeLabel(Int32(labelScratch[i]), at: slot + imageBytes)
        }
        done += n
        if done == input.recordCount && !input.allowTrailingBytes {
            try IDXReader.refuseTrailingBytes(images, payload: imagesTotal)
            try IDXReader.refuseTrailingBytes(labels, payload: 8 + input.recordCount)
        }
        return n
    }

    /// Throws when `file` goes on after its header and `payload` bytes of records.
    static func refuseTrailingBytes(_ file: InputFile, payload: Int) throws {
        let extra = try file.remainingBytes()
        guard extra == 0 else {
            throw ShardError.trailingBytes(file: file.path, count: extra, payloadBytes: payload)
        }
    }
}
