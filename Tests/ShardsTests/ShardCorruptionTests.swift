import XCTest
@testable import Shards

/// Every corruption class gives a clean thrown error of the right case that says where it is.
final class ShardCorruptionTests: XCTestCase {
    var dir = ""
    var path = ""
    var pristine: [UInt8] = []
    /// The records the shard holds, concatenated.
    var raw: [UInt8] = []
    let schema = imageSchema(4, 5, 3, classes: 7)

    override func setUpWithError() throws {
        dir = makeTempDirectory()
        path = dir + "/c.zshard"
        raw = records(images: testBytes(50 * 60, seed: 2, range: 8), labels: (0..<50).map { Int32($0 % 7) }, imageBytes: 60)
        let writer = try ShardWriter(path: path, schema: schema, options: ShardWriterOptions(blockBytes: 640))
        try raw.withUnsafeBytes { try writer.append($0) }
        _ = try writer.finish()
        pristine = readBytes(path)
    }

    override func tearDown() { removeDirectory(dir) }

    func corrupt(_ edit: (inout [UInt8]) -> Void) {
        var bytes = pristine
        edit(&bytes)
        writeBytes(bytes, path)
    }

    /// Layout facts from the pristine file.
    func layout() throws -> ShardReader { try ShardReader(path: path) }

    /// Opens the shard and decodes every block; returns the records, concatenated.
    @discardableResult
    func decodeEvery() throws -> [UInt8] {
        let r = try ShardReader(path: path)
        let d = try r.makeDecoder()
        var buffer = [UInt8](repeating: 0, count: r.largestBlock)
        var out: [UInt8] = []
        for b in 0..<r.blocks.count {
            let n = try buffer.withUnsafeMutableBytes { try d.decode(block: b, into: $0) }
            out += buffer[0 ..< n * r.schema.recordSize]
        }
        return out
    }

    /// Rewrites the index entries with `edit` and reseals the index CRC, so only the lie remains.
    func lieInIndex(_ edit: (inout [BlockEntry], inout Int, inout Int) -> Void) throws {
        writeBytes(pristine, path)
        let r = try layout()
        var entries = r.blocks
        var largest = r.largestBlock
        var total = r.totalRecords
        edit(&entries, &largest, &total)
        let index = ShardIndex(entries: entries, indexOffset: r.indexOffset, largestBlock: largest, totalRecords: total).encoded()
        corrupt { bytes in bytes.replaceSubrange(r.indexOffset..., with: index) }
    }

    func testPristineShardDecodesToItsRecords() throws {
        XCTAssertEqual(try ShardReader(path: path).blocks.count, 5)
        XCTAssertEqual(try decodeEvery(), raw)
    }

    func testBitFlipInHeaderIsAHeaderChecksumMismatch() throws {
        for offset in [12, 13, 20, 30] {  // version, flags, schema length area, schema JSON
            corrupt { $0[offset] ^= 0x04 }
            assertShardError(try ShardReader(path: path), mentioning: path) {
                if case .headerChecksumMismatch(_, 8, _, _) = $0 { return true }
                // A flipped length can also make the header run past the file or not fit.
                if case .inconsistent = $0 { return true } else { return false }
            }
        }
        corrupt { $0[40] ^= 0x01 }  // deep inside the schema JSON
        assertShardError(try ShardReader(path: path)) { if case .headerChecksumMismatch = $0 { return true } else { return false } }
    }

    func testWrongMagicAtStartIsBadMagicAtOffsetZero() {
        corrupt { $0[0] = 0x00 }
        assertShardError(try ShardReader(path: path), mentioning: "offset 0") {
            if case .badMagic(_, 0, ShardFormat.headerFrameMagic, _) = $0 { return true } else { return false }
        }
        corrupt { $0[8] = 0x41 }  // our own header magic inside the skippable frame
        assertShardError(try ShardReader(path: path)) {
            if case .badMagic(_, 8, ShardFormat.headerMagic, _) = $0 { return true } else { return false }
        }
    }

    func testWrongTrailerMagicIsAMissingTrailerAtTheMagicsOffset() {
        let size = pristine.count
        corrupt { $0[$0.count - 1] ^= 0xFF }
        assertShardError(try ShardReader(path: path), mentioning: "byte offset \(size - 4)") {
            $0 == .missingTrailer(file: self.path, offset: size - 4, size: size)
        }
    }

    func testFileTooShortForAnIndexAfterItsHeaderIsTruncatedAtTheHeadersEnd() throws {
        let r = try layout()
        // The header and a trailer-sized tail: the header checks out, but no index frame fits.
        let cut = Array(pristine[0 ..< r.blocksStart]) + Array(pristine[(pristine.count - 36)...])
        writeBytes(cut, path)
        assertShardError(try ShardReader(path: path), mentioning: "byte offset \(r.blocksStart)") {
            $0 == .truncated(file: self.path, offset: r.blocksStart, needed: r.blocksStart + 40, size: cut.count)
        }
    }

    func testBitFlipInBlockIsABlockChecksumMismatchNamingShardBlockAndOffset() throws {
        let r = try layout()
        let block = r.blocks[3]
        corrupt { $0[block.offset + block.compressedSize / 2] ^= 0x20 }
        XCTAssertNoThrow(try ShardReader(path: path), "a block flip is found when the block is read, not at open")
        assertShardError(try decodeEvery(), mentioning: "Block 3 of \(path) at byte offset \(block.offset)") {
            if case .blockChecksumMismatch(_, 3, block.offset, block.crc, _) = $0 { return true } else { return false }
        }
    }

    func testCorruptFrameWithResealedCRCIsCaughtByZstdChecksum() throws {
        // The frame's last 4 bytes are zstd's content checksum: flip one and reseal the index
        // CRC, so only zstd's own check can catch it.
        let r = try layout()
        try lieInIndex { entries, _, _ in
            let e = entries[1]
            var frame = Array(pristine[e.offset ..< e.offset + e.compressedSize])
            frame[frame.count - 2] ^= 0x01
            entries[1].crc = CRC32C.checksum(frame)
        }
        var bytes = readBytes(path)
        bytes[r.blocks[1].offset + r.blocks[1].compressedSize - 2] ^= 0x01
        writeBytes(bytes, path)
        assertShardError(try decodeEvery(), mentioning: "Block 1") {
            if case .contentChecksumMismatch(_, 1, r.blocks[1].offset) = $0 { return true } else { return false }
        }
    }

    func testBitFlipInIndexIsAnIndexChecksumMismatch() throws {
        let r = try layout()
        for delta in [8, 8 + 9, 8 + 24 * 2 + 14] {  // first entry's offset, sizes of later entries
            corrupt { $0[r.indexOffset + delta] ^= 0x02 }
            assertShardError(try ShardReader(path: path)) {
                if case .indexChecksumMismatch(_, r.indexOffset, _, _) = $0 { return true } else { return false }
            }
        }
    }

    func testUncompressedSizeThatLiesIsInconsistentAtOpen() throws {
        try lieInIndex { entries, _, _ in entries[2].uncompressedSize += 1 }
        assertShardError(try ShardReader(path: path), mentioning: "Block 2") {
            if case .inconsistent(_, 2, _, _) = $0 { return true } else { return false }
        }
    }

    func testCompressedSizeThatLiesIsInconsistentAtOpen() throws {
        try lieInIndex { entries, _, _ in entries[0].compressedSize -= 3 }
        assertShardError(try ShardReader(path: path)) {
            if case .inconsistent(_, .some(1), _, _) = $0 { return true } else { return false }  // block 1 no longer starts where block 0 ends
        }
        try lieInIndex { entries, _, _ in entries[entries.count - 1].compressedSize = 1 << 30 }
        assertShardError(try ShardReader(path: path)) {
            if case .inconsistent = $0 { return true } else { return false }
        }
    }

    func testTrailerTotalsThatLieAreInconsistent() throws {
        try lieInIndex { _, _, total in total += 1 }
        assertShardError(try ShardReader(path: path), mentioning: "records") {
            if case .inconsistent(_, nil, _, _) = $0 { return true } else { return false }
        }
        try lieInIndex { _, largest, _ in largest = 1 << 20 }
        assertShardError(try ShardReader(path: path), mentioning: "largest") {
            if case .inconsistent(_, nil, _, _) = $0 { return true } else { return false }
        }
    }

    func testConsistentLieAboutRecordCountIsCaughtWhenTheBlockDecodes() throws {
        // Records, size, totals and CRC all agree with each other; only the frame knows better.
        try lieInIndex { entries, largest, total in
            entries[0].records += 1
            entries[0].uncompressedSize += 64
            largest = max(largest, entries[0].uncompressedSize)
            total += 1
        }
        XCTAssertNoThrow(try ShardReader(path: path))
        assertShardError(try decodeEvery(), mentioning: "Block 0") {
            if case .blockSizeMismatch(_, 0, _, 704, 640) = $0 { return true } else { return false }
        }
    }

    /// Bytes the format leaves unchecked, by region (padding, reserved fields): none, as
    /// `ShardFormat` documents. A format change that adds some names them here.
    static let uncheckedBytes: [(region: String, range: Range<Int>)] = []

    /// Every bit of every byte of a 5-block shard, flipped one at a time (8 flips per byte), and
    /// every byte replaced by its complement: each flip is found, at open or when its block
    /// decodes, by a ShardError that names the shard and where the flip is: the block, or an
    /// offset inside the header frame, or inside the index frame for the index and the trailer
    /// it ends in.
    func testEveryByteFlipIsDetectedAndNamesItsBlockOrRegion() throws {
        let r = try layout()
        XCTAssertEqual(r.blocks.count, 5)
        let size = pristine.count
        XCTAssertEqual(r.blocksStart + r.blocks.map(\.compressedSize).reduce(0, +), r.indexOffset, "the regions tile the file")
        func region(of byte: Int) -> ShardRegion {
            if byte < r.blocksStart { return .header }
            if byte >= size - ShardFormat.trailerSize { return .trailer }
            if byte >= r.indexOffset { return .index }
            return .block(r.blocks.lastIndex { $0.offset <= byte }!)
        }
        let unchecked = Set(Self.uncheckedBytes.flatMap(\.range))
        let masks: [UInt8] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF]
        var undetected: [Int] = []
        var found: [String: Int] = [:]  // "region: error case" -> flips
        // Bytes are changed in place (the reader maps the file afresh at each open), which keeps
        // the 16,000 flips of a 1.8 KB shard to seconds.
        writeBytes(pristine, path)
        let file = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        defer { try? file.close() }
        func poke(_ byte: Int, _ value: UInt8) throws {
            try file.seek(toOffset: UInt64(byte))
            try file.write(contentsOf: [value])
        }
        for byte in 0 ..< size {
            let place = region(of: byte)
            defer { try? poke(byte, pristine[byte]) }
            for mask in masks {
                try poke(byte, pristine[byte] ^ mask)
                let error: ShardError
                do {
                    try decodeEvery()
                    undetected.append(byte)
                    continue
                } catch let e as ShardError {
                    error = e
                } catch {
                    XCTFail("byte \(byte) ^ \(mask): not a ShardError: \(error)")
                    continue
                }
                found["\(place.name): \(error.caseName)", default: 0] += 1
                let location = error.location
                func context() -> String { "byte \(byte) (\(place.name)) ^ 0x\(String(mask, radix: 16)): \(error)" }
                XCTAssertEqual(location.file, path, context())
                XCTAssertTrue(error.description.contains(path), context())
                guard let offset = location.offset else {
                    XCTFail("no byte offset: \(context())")
                    continue
                }
                XCTAssertTrue(error.description.contains("byte offset \(offset)"), context())
                switch place {
                case .header:
                    XCTAssertNil(location.block, context())
                    XCTAssertTrue(offset < r.blocksStart, "offset outside the header frame: \(context())")
                case let .block(b):
                    // The frame's CRC32C is checked before anything else reads the frame.
                    XCTAssertEqual(error, .blockChecksumMismatch(file: path, block: b, offset: r.blocks[b].offset, stored: r.blocks[b].crc,
                                                                 computed: error.computedChecksum ?? 0), context())
                    XCTAssertTrue(error.description.contains("Block \(b) of \(path)"), context())
                case .index, .trailer:
                    // The index CRC32C covers the trailer's fields, so either may name the frame's start.
                    XCTAssertNil(location.block, context())
                    XCTAssertTrue(offset >= r.indexOffset && offset < size, "offset outside the index frame: \(context())")
                }
            }
        }
        XCTAssertEqual(Set(undetected).sorted(), unchecked.sorted(), "bytes whose flips went undetected, against the documented unchecked bytes")
        XCTAssertEqual(undetected.count, unchecked.count * masks.count, "every flip of an unchecked byte is accepted")
        print("shard of \(size) bytes (header \(r.blocksStart), 5 blocks \(r.blocks.map(\.compressedSize)), index \(size - r.indexOffset)): "
              + "\(size * masks.count) flips, \(undetected.count) undetected (\(unchecked.count) unchecked bytes); "
              + found.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// The file cut at every length: a truncation or a missing trailer, never a shard that opens.
    func testEveryTruncationIsATruncatedFileOrAMissingTrailer() throws {
        writeBytes(pristine, path)
        let file = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        defer { try? file.close() }
        for cut in stride(from: pristine.count - 1, through: 0, by: -1) {
            try file.truncate(atOffset: UInt64(cut))
            assertShardError(try ShardReader(path: path), mentioning: path) {
                switch $0 {
                case .truncated, .missingTrailer: return true
                default: return false
                }
            }
        }
    }

    func testEmptyAndForeignFilesAreRejected() {
        writeBytes([], path)
        assertShardError(try ShardReader(path: path)) { if case .truncated = $0 { return true } else { return false } }
        writeBytes(Array("hello, this is not a shard at all, just some text padding it out".utf8), path)
        assertShardError(try ShardReader(path: path)) { if case .badMagic(_, 0, _, _) = $0 { return true } else { return false } }
        assertShardError(try ShardReader(path: dir + "/missing.zshard")) { if case .io = $0 { return true } else { return false } }
    }
}

/// The parts of a shard a corrupted byte can sit in.
enum ShardRegion {
    case header, block(Int), index, trailer

    var name: String {
        switch self {
        case .header: return "header"
        case let .block(b): return "block \(b)"
        case .index: return "index"
        case .trailer: return "trailer"
        }
    }
}

extension ShardError {
    /// The file, block and byte offset a shard-structure error names (nil where it names none).
    var location: (file: String?, block: Int?, offset: Int?) {
        switch self {
        case let .badMagic(file, offset, _, _), let .truncated(file, offset, _, _), let .missingTrailer(file, offset, _),
             let .headerChecksumMismatch(file, offset, _, _), let .indexChecksumMismatch(file, offset, _, _):
            return (file, nil, offset)
        case let .inconsistent(file, block, offset, _):
            return (file, block, offset)
        case let .blockChecksumMismatch(file, block, offset, _, _), let .contentChecksumMismatch(file, block, offset),
             let .corruptFrame(file, block, offset, _), let .blockSizeMismatch(file, block, offset, _, _):
            return (file, block, offset)
        case let .unsupportedVersion(file, _, _), let .io(file, _, _):
            return (file, nil, nil)
        default:
            return (nil, nil, nil)
        }
    }

    /// The computed CRC32C of a checksum mismatch.
    var computedChecksum: UInt32? {
        switch self {
        case let .blockChecksumMismatch(_, _, _, _, computed), let .headerChecksumMismatch(_, _, _, computed),
             let .indexChecksumMismatch(_, _, _, computed):
            return computed
        default:
            return nil
        }
    }

    /// The case's name, for a summary.
    var caseName: String { Mirror(reflecting: self).children.first?.label ?? "\(self)" }
}
