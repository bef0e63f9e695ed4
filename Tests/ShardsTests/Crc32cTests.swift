import XCTest
@testable import Shards

final class Crc32cTests: XCTestCase {
    func testKnownAnswer123456789() {
        XCTAssertEqual(CRC32C.checksum("123456789"), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum(""), 0)
    }

    /// Bitwise reference, one bit at a time, straight from the polynomial.
    private func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    func testSlicingMatchesBitwiseReferenceAtEveryAlignmentAndLength() {
        let data = testBytes(300, seed: 7)
        for start in 0..<9 {
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] where start + length <= data.count {
                let slice = Array(data[start ..< start + length])
                let got = data.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start ..< start + length])) }
                XCTAssertEqual(got, reference(slice), "start \(start) length \(length)")
            }
        }
    }

    func testIncrementalUpdateEqualsOneShot() {
        let data = testBytes(1000, seed: 3)
        var crc = CRC32C()
        data.withUnsafeBytes { all in
            var i = 0
            for step in [1, 3, 8, 13, 100, 875] { crc.update(UnsafeRawBufferPointer(rebasing: all[i ..< i + step])); i += step }
        }
        XCTAssertEqual(crc.value, CRC32C.checksum(data))
    }

    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256.hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testSHA256IncrementalEqualsOneShotAcrossBlockBoundaries() {
        let data = testBytes(1000, seed: 5)
        let whole = data.withUnsafeBytes { SHA256.hash($0) }
        for split in [0, 1, 55, 56, 63, 64, 65, 999] {
            var h = SHA256()
            h.update(Array(data[0 ..< split]))
            h.update(Array(data[split...]))
            XCTAssertEqual(h.finalizeHex(), whole, "split at \(split)")
        }
    }
}
