/// Where the image and the label sit inside a record, read from the schema once.
/// The image field is `image`, HWC ([height, width, channels] or [height, width]), uint8 or
/// float32; the label field is `label`, one uint8, int32 or int64.
public struct ImageLayout: Sendable, Equatable {
    public enum PixelType: Sendable, Equatable { case uint8, float32 }

    public let height: Int
    public let width: Int
    public let channels: Int
    public let pixelType: PixelType
    public let imageOffset: Int
    public let labelOffset: Int
    public let labelType: FieldType
    public let recordSize: Int
    public let classCount: Int

    /// Floats per image in the batch: C x H x W.
    public var imageElements: Int { channels * height * width }

    public init(schema: RecordSchema) throws {
        guard let image = schema.field("image"), let imageOffset = schema.offset(of: "image") else {
            throw LoaderError.unsupportedSchema("no field named \"image\"")
        }
        guard let label = schema.field("label"), let labelOffset = schema.offset(of: "label") else {
            throw LoaderError.unsupportedSchema("no field named \"label\"")
        }
        switch image.shape.count {
        case 2: (height, width, channels) = (image.shape[0], image.shape[1], 1)
        case 3: (height, width, channels) = (image.shape[0], image.shape[1], image.shape[2])
        default: throw LoaderError.unsupportedSchema("image shape \(image.shape) is not [H, W] or [H, W, C]")
        }
        guard height > 0, width > 0, channels > 0 else {
            throw LoaderError.unsupportedSchema("image shape \(image.shape) has an empty dimension")
        }
        switch image.type {
        case .uint8: pixelType = .uint8
        case .float32: pixelType = .float32
        default: throw LoaderError.unsupportedSchema("image pixels of type \(image.type.rawValue)")
        }
        guard label.elementCount == 1, label.type != .float32, label.type != .bfloat16 else {
            throw LoaderError.unsupportedSchema("label must be one integer, got \(label.type.rawValue) \(label.shape)")
        }
        guard schema.classCount > 0 else {
            throw LoaderError.unsupportedSchema("classCount must be positive")
        }
        self.imageOffset = imageOffset
        self.labelOffset = labelOffset
        labelType = label.type
        recordSize = schema.recordSize
        classCount = schema.classCount
    }

    /// The label of the record at `record`, widened to Int64 (little-endian storage).
    @inline(__always)
    func label(of record: UnsafeRawPointer) -> Int64 {
        switch labelType {
        case .uint8: return Int64(record.load(fromByteOffset: labelOffset, as: UInt8.self))
        case .int32: return Int64(Int32(littleEndian: record.loadUnaligned(fromByteOffset: labelOffset, as: Int32.self)))
        case .int64: return Int64(littleEndian: record.loadUnaligned(fromByteOffset: labelOffset, as: Int64.self))
        case .float32, .bfloat16: return -1
        }
    }
}
