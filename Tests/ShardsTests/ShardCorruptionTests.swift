import XCTest
@testable import Shards

/// Every corruption class gives a clean thrown error of the right case, never a crash.
final class ShardCorruptionTests: XCTestCase {
    var dir = ""
    var path = ""
    var pristine: [UInt8] = []
    let schema = imageSchema(4, 5, 3, classes: 7)

    override func setUpWithError() throws {
        dir = makeTempDirectory()
        path = dir + "/c.zshard"
        let raw = records(images: testBytes(50 * 60, seed: 2, range: 8), labels: (0..<50).map { Int32($0 % 7) }, imageBytes: 60)
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

    func decodeEvery() throws {
        let r = try ShardReader(path: path)
        let d = try r.makeDecoder()
        var buffer = [UInt8](repeating: 0, count: r.largestBlock)
        for b in 0..<r.blocks.count { _ = try buffer.withUnsafeMutableBytes { try d.decode(block: b, into: $0) } }
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

    func testPristineShardOpensAndDecodes() throws {
        XCTAssertNoThrow(try decodeEvery())
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

    func testWrongTrailerMagicIsAMissingTrailer() {
        corrupt { $0[$0.count - 1] ^= 0xFF }
        assertShardError(try ShardReader(path: path)) { if case .missingTrailer = $0 { return true } else { return false } }
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

    func testTruncationAtManyPointsIsAClearError() throws {
        let r = try layout()
        for cut in [0, 3, 10, 30, r.blocksStart, r.blocks[2].offset + 5, r.indexOffset, r.indexOffset + 20, pristine.count - 1] {
            writeBytes(Array(pristine[0 ..< cut]), path)
            assertShardError(try ShardReader(path: path)) {
                switch $0 {
                case .truncated, .missingTrailer: return true
                default: return false
                }
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

    func testRandomCorruptionNeverCrashes() throws {
        // Many single-byte flips anywhere: each must open-and-decode cleanly or throw a ShardError.
        var x: UInt64 = 12345
        for _ in 0..<300 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            let offset = Int(x >> 33) % pristine.count
            corrupt { $0[offset] ^= UInt8(truncatingIfNeeded: x >> 20) | 1 }
            do { try decodeEvery() } catch is ShardError {} catch { XCTFail("not a ShardError: \(error)") }
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
