import Foundation

/// The contents of `memory.json`: the schema tag, an optional generation time and the comparison.
public struct MemoryDocument: Equatable, Sendable, Codable {
    /// Always `ReportSchema.version` when written by this code.
    public var schema: String
    /// ISO 8601 time the report was written; nil keeps the output byte-for-byte reproducible.
    public var generatedAt: String?
    public var comparison: MemoryComparison

    public init(comparison: MemoryComparison, generatedAt: String? = nil) {
        self.schema = ReportSchema.version
        self.generatedAt = generatedAt
        self.comparison = comparison
    }

    /// The same document with every timeline reduced to at most `maxPoints` points (peaks kept).
    public func downsampled(maxPoints: Int) -> MemoryDocument {
        var copy = self
        copy.comparison.local.timeline = comparison.local.timeline.downsampled(maxPoints: maxPoints)
        copy.comparison.backprop.timeline = comparison.backprop.timeline.downsampled(maxPoints: maxPoints)
        copy.comparison.others = comparison.others.map {
            var mode = $0
            mode.timeline = $0.timeline.downsampled(maxPoints: maxPoints)
            return mode
        }
        return copy
    }

    /// Compact JSON with sorted keys, so equal documents give equal bytes.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Reads a document, refusing other schema versions.
    public static func decode(_ data: Data) throws -> MemoryDocument {
        // Check the tag first so an old document fails with a clear error, not a missing field.
        struct Tag: Decodable { var schema: String }
        let tag = try JSONDecoder().decode(Tag.self, from: data)
        guard ReportSchema.isReadable(tag.schema) else { throw ReportError.unsupportedSchema(found: tag.schema) }
        return try JSONDecoder().decode(MemoryDocument.self, from: data)
    }
}
