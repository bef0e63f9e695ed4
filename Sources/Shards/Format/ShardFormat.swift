/// Constants and byte layout of a `.zshard` file (format version 1). All integers little-endian.
///
/// ```
/// [header]  skippable frame 0x184D2A5A: u32 magic "ZSHD", u16 version, u16 flags,
///           u32 record size, u32 schema JSON length, schema JSON, u32 CRC32C of the preceding payload
/// [blocks]  one ordinary zstd frame per block of whole records (content size + checksum on)
/// [index]   skippable frame 0x184D2A5B: per block {u64 offset, u32 compressed size,
///           u32 uncompressed size, u32 records, u32 CRC32C of the frame bytes},
///           then the trailer {u64 index offset, u32 block count, u32 largest block,
///           u64 total records, u32 CRC32C of entries + preceding trailer fields, u32 magic "ZSIX"}
/// ```
/// Every byte is checked, so any corrupted byte is found: the two frame magics and "ZSHD" and
/// "ZSIX" are compared, the frame sizes are checked against the file and each other, the header
/// payload, each block frame and the index (entries and trailer fields) are under a CRC32C, and
/// the CRC32Cs themselves are compared. There is no padding and no reserved field.
/// The trailer is the file's last 32 bytes, so a reader finds the index from the end; the
/// skippable frames make the whole file a valid multi-frame zstd stream that `zstd -dc`
/// decompresses to the records concatenated.
public enum ShardFormat {
    public static let version = 1
    public static let fileExtension = "zshard"

    static let headerFrameMagic: UInt32 = 0x184D_2A5A
    static let indexFrameMagic: UInt32 = 0x184D_2A5B
    static let zstdFrameMagic: UInt32 = 0xFD2F_B528
    /// "ZSHD" read as a little-endian u32.
    static let headerMagic: UInt32 = 0x4448_535A
    /// "ZSIX" read as a little-endian u32.
    static let trailerMagic: UInt32 = 0x5849_535A

    /// Skippable frame prefix: u32 magic + u32 payload size.
    static let frameHeaderSize = 8
    /// Header payload before the schema JSON.
    static let headerFixedSize = 16
    static let blockEntrySize = 24
    static let trailerSize = 32
    /// Smallest possible shard: empty-schema header + index frame with no blocks.
    static let minimumFileSize = frameHeaderSize + headerFixedSize + 4 + frameHeaderSize + trailerSize

    /// Header flag: records are fixed-size and sit at a fixed stride (the only layout so far).
    public static let flagFixedStride: UInt16 = 1
    /// Header flag: records were shuffled at conversion time.
    public static let flagPreShuffled: UInt16 = 2
}

/// Little-endian serialisation into a growing byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func append(_ b: [UInt8]) { bytes += b }
}

extension UnsafeRawBufferPointer {
    /// Little-endian loads at any alignment; callers check `offset + size <= count` first.
    @inline(__always) func u16(at offset: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    @inline(__always) func u32(at offset: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    @inline(__always) func u64(at offset: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}
