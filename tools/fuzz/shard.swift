// The shard reader (tools/fuzz.sh shard): header, trailer, index and every block of one .zshard file.
@testable import Shards

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzShard(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let path = FuzzInput.write(UnsafeRawBufferPointer(start: data, count: count), to: "input.zshard")
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
    return 0
}
