/// Why the loader refused to start or stopped. Decoder faults keep the decoder's own error
/// (which names shard, block and offset) as `underlying`.
public enum LoaderError: Error, CustomStringConvertible, Sendable {
    case invalidConfig(String)
    /// The schema lacks a field the loader needs, or its type or shape is not supported.
    case unsupportedSchema(String)
    /// The source reports a block larger than its own `maxBlockBytes`.
    case blockTooLarge(block: Int, bytes: Int, maxBlockBytes: Int)
    /// Decoding block `block` failed.
    case decodeFailed(block: Int, underlying: any Error)
    /// The decoder returned another record count than the source's index promised.
    case recordCountMismatch(block: Int, expected: Int, decoded: Int)
    /// A decoded label is outside 0..<classCount.
    case labelOutOfRange(block: Int, record: Int, label: Int64, classCount: Int)
    /// A cursor does not belong to this source or configuration.
    case cursorMismatch(String)

    public var description: String {
        switch self {
        case .invalidConfig(let message):
            return "Invalid loader configuration: \(message)."
        case .unsupportedSchema(let message):
            return "The loader cannot read this schema: \(message)."
        case let .blockTooLarge(block, bytes, maxBlockBytes):
            return "Block \(block) holds \(bytes) bytes of records, more than the source's largest block size \(maxBlockBytes)."
        case let .decodeFailed(block, underlying):
            return "Decoding block \(block) failed: \(underlying)"
        case let .recordCountMismatch(block, expected, decoded):
            return "Block \(block) decoded to \(decoded) records but the index says \(expected)."
        case let .labelOutOfRange(block, record, label, classCount):
            return "Record \(record) of block \(block) has label \(label), outside 0..<\(classCount)."
        case .cursorMismatch(let message):
            return "The loader cursor does not match: \(message)."
        }
    }
}
