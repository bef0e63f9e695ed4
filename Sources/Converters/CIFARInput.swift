import Shards

/// CIFAR-10 / CIFAR-100 binary files (`data_batch_1.bin` ..., `train.bin`): each record is the
/// label byte(s) then a 3 x 32 x 32 image in CHW order (all red, then green, then blue).
/// CIFAR-10 has one label byte; CIFAR-100 has two, coarse then fine. Images are stored as HWC
/// uint8 [32, 32, 3] so every image dataset has the same layout.
public struct CIFARInput: RecordInput {
    public enum Variant: String, Sendable, CaseIterable {
        case cifar10, cifar100
        var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    }

    public static let imageBytes = 3 * 32 * 32
    public let files: [String]
    public let variant: Variant
    /// CIFAR-100 only: use the 20 coarse labels instead of the 100 fine ones.
    public let coarseLabels: Bool
    /// Records in each file.
    public let counts: [Int]
    public let recordCount: Int

    /// Checks that every file is a whole number of records of the variant.
    public init(files: [String], variant: Variant, coarseLabels: Bool = false) throws {
        guard !files.isEmpty else { throw ShardError.invalidOption(name: "files", problem: "give at least one CIFAR binary file") }
        if coarseLabels && variant == .cifar10 {
            throw ShardError.invalidOption(name: "coarse", problem: "CIFAR-10 has no coarse labels")
        }
        self.files = files
        self.variant = variant
        self.coarseLabels = coarseLabels
        let stride = variant.labelBytes + CIFARInput.imageBytes
        counts = try files.map { path in
            let size = try InputFile(path: path).sizeOnDisk
            guard size > 0, size % stride == 0 else {
                throw ShardError.invalidInput(file: path, problem: "its size \(size) is not a whole number of \(stride)-byte \(variant == .cifar10 ? "CIFAR-10" : "CIFAR-100") records (truncated, or another variant?)")
            }
            return size / stride
        }
        recordCount = counts.reduce(0, +)
    }

    public var fields: [Field] { imageFields(type: .uint8, shape: [32, 32, 3]) }
    public var impliedClassCount: Int? { variant == .cifar10 ? 10 : (coarseLabels ? 20 : 100) }

    public var provenance: SourceProvenance {
        SourceProvenance(format: variant.rawValue, files: files.map(sourceFile),
                         options: variant == .cifar100 ? ["labels": coarseLabels ? "coarse" : "fine"] : [:])
    }

    public func labelFile(ofRecord index: Int) -> String {
        var first = 0
        for (file, count) in zip(files, counts) {
            if index < first + count { return file }
            first += count
        }
        return files.last!
    }

    public func makeReader() throws -> RecordInputReader { CIFARReader(self) }
}

/// One pass over the CIFAR files in order, transposing CHW to HWC.
final class CIFARReader: RecordInputReader {
    let input: CIFARInput
    var fileIndex = 0
    var file: InputFile?
    var doneInFile = 0
    var scratch: UnsafeMutableRawBufferPointer

    init(_ input: CIFARInput) {
        self.input = input
        scratch = .allocate(byteCount: input.variant.labelBytes + CIFARInput.imageBytes, alignment: 16)
    }

    deinit { scratch.deallocate() }

    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let recordSize = CIFARInput.imageBytes + 4
        let capacity = destination.count / recordSize
        let labelBytes = input.variant.labelBytes
        let stride = labelBytes + CIFARInput.imageBytes
        var n = 0
        // Past the last file every call returns 0 (fileIndex == files.count, never used as an index).
        while n < capacity && fileIndex < input.files.count {
            if file != nil && doneInFile == input.counts[fileIndex] {
                file = nil
                fileIndex += 1
                continue
            }
            if file == nil {
                file = try InputFile(path: input.files[fileIndex])
                doneInFile = 0
            }
            try file!.readExactly(into: scratch, expectedTotal: input.counts[fileIndex] * stride)
            let src = scratch.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let dst = (destination.baseAddress! + n * recordSize).assumingMemoryBound(to: UInt8.self)
            // CHW -> HWC: dst[(y * 32 + x) * 3 + c] = src[c * 1024 + y * 32 + x]
            let image = src + labelBytes
            for p in 0..<1024 {
                dst[p &* 3] = image[p]
                dst[p &* 3 &+ 1] = image[1024 &+ p]
                dst[p &* 3 &+ 2] = image[2048 &+ p]
            }
            // CIFAR-100: byte 0 is the coarse label, byte 1 the fine one.
            let label = input.variant == .cifar10 ? src[0] : (input.coarseLabels ? src[0] : src[1])
            storeLabel(Int32(label), at: UnsafeMutableRawPointer(dst + CIFARInput.imageBytes))
            doneInFile += 1
            n += 1
        }
        return n
    }
}
