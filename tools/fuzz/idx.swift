// IDX inputs (tools/fuzz.sh idx): an images file and a labels file (split as FuzzInput.split
// says), each plain or gzip, converted record by record; once refusing and once allowing
// trailing bytes.
@testable import Shards
#if canImport(Converters)
@testable import Converters
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let (images, labels) = FuzzInput.split(UnsafeRawBufferPointer(start: data, count: count))
    let imagesPath = FuzzInput.write(images, to: "images.idx"), labelsPath = FuzzInput.write(labels, to: "labels.idx")
    for allow in [false, true] {
        do {
            let input = try IDXInput(images: imagesPath, labels: labelsPath, allowTrailingBytes: allow)
            guard max(input.recordCount, 16) * input.recordSize <= 64 << 20 else { continue }  // drain holds 16 records
            try FuzzInput.drain(try IDXReader(input), recordSize: input.recordSize)
        } catch is ShardError {
        } catch {
            fatalError("IDXInput threw something other than ShardError: \(error)")
        }
    }
    return 0
}
