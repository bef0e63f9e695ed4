// The shard reader (tools/fuzz.sh shard): header, trailer, index and every block of one .zshard
// file. Each input is parsed twice: as it is, and with its CRC32Cs (header, every block the index
// points at inside the file, index) recomputed, so that mutations get past the checksums to
// the structural checks behind them.
@testable import Shards

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShard(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    parse(bytes)
    var repaired = [UInt8](bytes)
    repairChecksums(&repaired)
    if repaired.elementsEqual(bytes) == false { repaired.withUnsafeBytes { parse($0) } }
    return 0
}

private func parse(_ bytes: UnsafeRawBufferPointer) {
    let path = FuzzInput.write(bytes, to: "input.zshard")
    do {
        let reader = try ShardReader(path: path)
        // After init every block lies inside the file; decoding must then fail cleanly or succeed.
        let decoder = try reader.makeDecoder()
        let slot = UnsafeMutableRawBufferPointer.allocate(byteCount: max(reader.largestBlock, 1), alignment: 64)
        defer { slot.deallocate() }
        var records = 0
        for block in reader.blocks.indices {
            do { records += try decoder.decode(block: block, into: slot) } catch is ShardError {}
        }
        precondition(records <= reader.totalRecords, "decoded more records than the trailer counts")
    } catch is ShardError {
    } catch {
        fatalError("ShardReader threw something other than ShardError: \(error)")
    }
}

/// Rewrites the stored CRC32Cs where the bytes say they are (and only inside the input).
private func repairChecksums(_ file: inout [UInt8]) {
    let size = file.count
    func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(file[at + $1]) << (8 * $1) } }
    func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(file[at + $1]) << (8 * UInt64($1)) } }
    func store(_ crc: UInt32, at: Int) { for i in 0..<4 { file[at + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) } }
    func crc(_ range: Range<Int>) -> UInt32 { file.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) } }

    // Header: CRC32C of the payload but its last 4 bytes, stored in those.
    if size >= 8 {
        let payload = u32(4)
        if payload >= 4 && payload <= size - 8 { store(crc(8 ..< 8 + payload - 4), at: 8 + payload - 4) }
    }
    // Index: where the trailer's block count puts it; blocks first, since their CRCs are in it.
    let t = size - ShardFormat.trailerSize
    guard t >= 0 else { return }
    let blocks = u32(t + 8)
    let indexOffset = t - blocks * ShardFormat.blockEntrySize - ShardFormat.frameHeaderSize
    guard indexOffset >= 0 else { return }
    let body = indexOffset + ShardFormat.frameHeaderSize
    for i in 0..<blocks {
        let e = body + i * ShardFormat.blockEntrySize
        let offset = u64(e), compressed = u32(e + 8)
        if offset <= UInt64(size), Int(offset) + compressed <= size { store(crc(Int(offset) ..< Int(offset) + compressed), at: e + 20) }
    }
    store(crc(body ..< size - 8), at: size - 8)
}
