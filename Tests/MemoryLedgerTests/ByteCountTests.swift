import MemoryLedger
import XCTest

/// One parser for sizes: SI prefixes are powers of 1000, binary prefixes powers of 1024.
final class ByteCountTests: XCTestCase {
    func testBinaryPrefixesArePowersOf1024() {
        XCTAssertEqual(ByteCount.parse("256MiB"), 256 << 20)
        XCTAssertEqual(ByteCount.parse("1.5GiB"), 3 << 29)
        XCTAssertEqual(ByteCount.parse("64KiB"), 65_536)
        XCTAssertEqual(ByteCount.parse("2TiB"), 2 << 40)
        XCTAssertEqual(ByteCount.parse("64k"), 65_536, "a bare K is KiB, as coreutils reads it")
        XCTAssertEqual(ByteCount.parse("256M"), 256 << 20)
    }

    func testSIPrefixesArePowersOf1000() {
        XCTAssertEqual(ByteCount.parse("300MB"), 300_000_000)
        XCTAssertEqual(ByteCount.parse("500kB"), 500_000)
        XCTAssertEqual(ByteCount.parse("2GB"), 2_000_000_000)
        XCTAssertEqual(ByteCount.parse("1.5 mb"), 1_500_000, "case-insensitive, a space before the unit")
    }

    func testPlainBytesAndRoundingDown() {
        XCTAssertEqual(ByteCount.parse("4096"), 4096)
        XCTAssertEqual(ByteCount.parse(" 4096B "), 4096)
        XCTAssertEqual(ByteCount.parse("0.5KiB"), 512)
        XCTAssertEqual(ByteCount.parse("1.0009kB"), 1000, "whole bytes, rounded down")
    }

    func testAnythingElseIsRejected() {
        for text in ["", "lots", "12 parsecs", "-5MiB", "MiB", "1.2.3MB", "5 MiBs", "1e3", "99999999999TB"] {
            XCTAssertNil(ByteCount.parse(text), text)
        }
    }

    func testExactBinaryFormRoundTrips() {
        for bytes in [0, 1, 1000, 1024, 256 << 10, 64 << 20, 3 << 30, (1 << 20) + 1] {
            XCTAssertEqual(ByteCount.parse(ByteCount.exactBinary(bytes)), bytes, ByteCount.exactBinary(bytes))
        }
        XCTAssertEqual(ByteCount.exactBinary(256 << 20), "256MiB")
    }
}
