/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and many storage
/// formats. Table-driven, slicing by 16: sixteen independent table lookups per 16 input bytes
/// instead of a dependent chain of one per byte, which is what makes checking every block on the
/// read path affordable without the SSE4.2 instruction (a plain release build targets baseline
/// x86-64). Slicing by 16 measured 1.3x faster than by 8 here (about 2.0 vs 1.5 GB/s on one core,
/// /tmp micro-benchmark over 150 KB buffers, -Ounchecked), for 16 KiB of tables.
///
/// Known answer: `CRC32C.checksum("123456789")` is `0xE3069283`.
public struct CRC32C: Sendable {
    /// The running state (pre- and post-inverted as the standard requires).
    private var state: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The finished checksum of everything fed so far.
    public var value: UInt32 { ~state }

    /// Feeds `bytes` into the running checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        state = CRC32C.advance(state, bytes)
    }

    /// The checksum of one buffer.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        ~advance(0xFFFF_FFFF, bytes)
    }

    /// The checksum of a byte array or string's UTF-8 bytes (convenience for small inputs).
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        Array(bytes).withUnsafeBytes { checksum($0) }
    }

    public static func checksum(_ string: String) -> UInt32 { checksum(Array(string.utf8)) }

    /// Sixteen 256-entry tables: table k maps a byte to its CRC contribution k bytes further on.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 16 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<16 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    private static func advance(_ start: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return start }
        var n = bytes.count
        var crc = start
        return tables.withUnsafeBufferPointer { tb -> UInt32 in
            let t = tb.baseAddress!
            // Byte at a time until 8-byte alignment, so the wide loads below are aligned.
            while n > 0 && (UInt(bitPattern: p) & 7) != 0 {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
                p += 1; n &-= 1
            }
            while n >= 16 {
                let w0 = UInt64(littleEndian: p.load(as: UInt64.self))
                let w1 = UInt64(littleEndian: p.load(fromByteOffset: 8, as: UInt64.self))
                let a = UInt32(truncatingIfNeeded: w0) ^ crc
                let b = UInt32(truncatingIfNeeded: w0 >> 32)
                let c = UInt32(truncatingIfNeeded: w1)
                let d = UInt32(truncatingIfNeeded: w1 >> 32)
                var x = t[15 &* 256 &+ Int(a & 0xFF)] ^ t[14 &* 256 &+ Int((a >> 8) & 0xFF)]
                x ^= t[13 &* 256 &+ Int((a >> 16) & 0xFF)] ^ t[12 &* 256 &+ Int(a >> 24)]
                x ^= t[11 &* 256 &+ Int(b & 0xFF)] ^ t[10 &* 256 &+ Int((b >> 8) & 0xFF)]
                x ^= t[9 &* 256 &+ Int((b >> 16) & 0xFF)] ^ t[8 &* 256 &+ Int(b >> 24)]
                x ^= t[7 &* 256 &+ Int(c & 0xFF)] ^ t[6 &* 256 &+ Int((c >> 8) & 0xFF)]
                x ^= t[5 &* 256 &+ Int((c >> 16) & 0xFF)] ^ t[4 &* 256 &+ Int(c >> 24)]
                x ^= t[3 &* 256 &+ Int(d & 0xFF)] ^ t[2 &* 256 &+ Int((d >> 8) & 0xFF)]
                x ^= t[1 &* 256 &+ Int((d >> 16) & 0xFF)] ^ t[Int(d >> 24)]
                crc = x
                p += 16; n &-= 16
            }
            while n > 0 {
                crc = (crc >> 8) ^ t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
                p += 1; n &-= 1
            }
            return crc
        }
    }
}
