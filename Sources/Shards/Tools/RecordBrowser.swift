/// Decoded records of one block, for `shards cat`.
public struct DecodedBlock: Sendable {
    public var schema: RecordSchema
    /// "split train, shard train-00000-of-00003.zshard, block 4".
    public var location: String
    public var bytes: [UInt8]
    public var count: Int

    /// One line per record: label, then per other field a summary (type, shape, min, max, mean)
    /// or, with `hex`, every byte of the record.
    public func describe(record index: Int, hex: Bool = false) -> String {
        let size = schema.recordSize
        let record = Array(bytes[index * size ..< (index + 1) * size])
        var parts = ["#\(index)"]
        var offset = 0
        for f in schema.fields {
            let slice = Array(record[offset ..< offset + f.byteCount])
            offset += f.byteCount
            if f.name == "label" && f.type == .int32 && f.elementCount == 1 {
                parts.insert("label \(slice.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) })", at: 1)
            } else if !hex {
                parts.append(summary(f, slice))
            }
        }
        if hex { parts.append(record.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " ")) }
        return parts.joined(separator: "  ")
    }

    private func summary(_ f: Field, _ bytes: [UInt8]) -> String {
        let values: [Double] = bytes.withUnsafeBytes { raw in
            (0..<f.elementCount).map { i in
                switch f.type {
                case .uint8: return Double(raw[i])
                case .int32: return Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                case .int64: return Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                case .float32: return Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))))
                case .bfloat16: return Double(Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16))
                }
            }
        }
        let mean = values.reduce(0, +) / Double(max(1, values.count))
        let nonzero = values.filter { $0 != 0 }.count
        return "\(f.name) \(f.type.rawValue)\(f.shape) min \(formatFixed(values.min() ?? 0, 3)) max \(formatFixed(values.max() ?? 0, 3)) mean \(formatFixed(mean, 3)) nonzero \(nonzero)"
    }
}

/// Opens a dataset and decodes single blocks by (split, shard, block).
public struct RecordBrowser {
    public let dataset: ShardDataset

    public init(directory: String) throws { dataset = try ShardDataset(directory: directory) }

    public func block(split: String, shard: Int, block: Int) throws -> DecodedBlock {
        let source = try dataset.split(split)
        guard shard >= 0 && shard < source.shards.count else {
            throw ShardError.invalidOption(name: "shard", problem: "split \(split) has shards 0..<\(source.shards.count)")
        }
        let reader = source.shards[shard]
        guard block >= 0 && block < reader.blocks.count else { throw ShardError.blockOutOfRange(block: block, count: reader.blocks.count) }
        var bytes = [UInt8](repeating: 0, count: reader.largestBlock)
        let decoder = try reader.makeDecoder()
        let count = try bytes.withUnsafeMutableBytes { try decoder.decode(block: block, into: $0) }
        bytes.removeLast(bytes.count - count * reader.schema.recordSize)
        return DecodedBlock(schema: reader.schema, location: "split \(split), shard \(fileName(reader.path)), block \(block)",
                            bytes: bytes, count: count)
    }
}

/// Record ranges on the command line: `5`, `0..<10`, `3...7`, `3-7`.
public enum RecordRange {
    /// The records selected by `text` among `count` (nil: the first 10).
    public static func parse(_ text: String?, count: Int) throws -> Range<Int> {
        guard let text else { return 0 ..< min(10, count) }
        func bad() -> ShardError { .invalidOption(name: "range", problem: "\"\(text)\" is not N, A..<B, A...B or A-B within 0..<\(count)") }
        let range: Range<Int>
        if let r = text.range(of: "..<") {
            guard let a = Int(text[..<r.lowerBound]), let b = Int(text[r.upperBound...]), a <= b else { throw bad() }
            range = a ..< b
        } else if let r = text.range(of: "...") ?? text.range(of: "-") {
            guard let a = Int(text[..<r.lowerBound]), let b = Int(text[r.upperBound...]), a <= b else { throw bad() }
            range = a ..< b + 1
        } else {
            guard let a = Int(text) else { throw bad() }
            range = a ..< a + 1
        }
        guard range.lowerBound >= 0, range.upperBound <= count else { throw bad() }
        return range
    }
}
