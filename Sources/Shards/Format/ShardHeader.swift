import Foundation

/// The header a shard starts with: format version, flags and the record schema.
public struct ShardHeader: Equatable, Sendable {
    public var version: Int
    public var flags: UInt16
    public var schema: RecordSchema

    public init(version: Int = ShardFormat.version, flags: UInt16, schema: RecordSchema) {
        self.version = version
        self.flags = flags
        self.schema = schema
    }

    /// The schema as canonical JSON (sorted keys), so equal schemas give equal bytes.
    static func canonicalJSON(_ schema: RecordSchema) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a plain struct of strings and ints cannot fail.
        return Array(try! encoder.encode(schema))
    }

    /// The whole header skippable frame.
    func encoded() -> [UInt8] {
        let json = ShardHeader.canonicalJSON(schema)
        var payload = ByteWriter()
        payload.u32(ShardFormat.headerMagic)
        payload.u16(UInt16(version))
        payload.u16(flags)
        payload.u32(UInt32(schema.recordSize))
        payload.u32(UInt32(json.count))
        payload.append(json)
        let crc = payload.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        payload.u32(crc)
        var frame = ByteWriter()
        frame.u32(ShardFormat.headerFrameMagic)
        frame.u32(UInt32(payload.bytes.count))
        frame.append(payload.bytes)
        return frame.bytes
    }

    /// Parses and checks the header at the start of `file`; returns it and the offset where the
    /// first block starts. Every size is checked against the file before it is used.
    static func decode(_ file: UnsafeRawBufferPointer, name: String) throws -> (header: ShardHeader, end: Int) {
        let size = file.count
        guard size >= ShardFormat.frameHeaderSize + ShardFormat.headerFixedSize + 4 else {
            throw ShardError.truncated(file: name, offset: 0, needed: ShardFormat.minimumFileSize, size: size)
        }
        let frameMagic = file.u32(at: 0)
        guard frameMagic == ShardFormat.headerFrameMagic else {
            throw ShardError.badMagic(file: name, offset: 0, expected: ShardFormat.headerFrameMagic, found: frameMagic)
        }
        let payloadSize = Int(file.u32(at: 4))
        let p = ShardFormat.frameHeaderSize
        guard payloadSize <= size - p else {
            throw ShardError.truncated(file: name, offset: 0, needed: p + payloadSize, size: size)
        }
        let magic = file.u32(at: p)
        guard magic == ShardFormat.headerMagic else {
            throw ShardError.badMagic(file: name, offset: p, expected: ShardFormat.headerMagic, found: magic)
        }
        guard payloadSize >= ShardFormat.headerFixedSize + 4 else {
            throw ShardError.inconsistent(file: name, block: nil, offset: 4, problem: "the header frame size \(payloadSize) is too small for a header")
        }
        let stored = file.u32(at: p + payloadSize - 4)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: file[p ..< p + payloadSize - 4]))
        guard stored == computed else {
            throw ShardError.headerChecksumMismatch(file: name, offset: p, stored: stored, computed: computed)
        }
        let version = Int(file.u16(at: p + 4))
        guard version >= 1 && version <= ShardFormat.version else {
            throw ShardError.unsupportedVersion(file: name, version: version, supported: ShardFormat.version)
        }
        let flags = file.u16(at: p + 6)
        let recordSize = Int(file.u32(at: p + 8))
        let jsonLength = Int(file.u32(at: p + 12))
        guard jsonLength == payloadSize - ShardFormat.headerFixedSize - 4 else {
            throw ShardError.inconsistent(file: name, block: nil, offset: p + 12,
                                          problem: "the schema length \(jsonLength) does not fit the header frame of \(payloadSize) bytes")
        }
        let jsonStart = p + ShardFormat.headerFixedSize
        let json = Data(UnsafeRawBufferPointer(rebasing: file[jsonStart ..< jsonStart + jsonLength]))
        guard let schema = try? JSONDecoder().decode(RecordSchema.self, from: json) else {
            throw ShardError.inconsistent(file: name, block: nil, offset: jsonStart, problem: "the schema JSON does not parse")
        }
        guard let schemaSize = schema.checkedRecordSize else {
            throw ShardError.inconsistent(file: name, block: nil, offset: jsonStart, problem: "the schema has a field with an impossible shape")
        }
        guard schemaSize == recordSize else {
            throw ShardError.inconsistent(file: name, block: nil, offset: p + 8,
                                          problem: "the record size \(recordSize) does not match the schema's \(schemaSize)")
        }
        return (ShardHeader(version: version, flags: flags, schema: schema), p + payloadSize)
    }
}
