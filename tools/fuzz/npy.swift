// NPY inputs (tools/fuzz.sh npy): an images array and a labels array (split as FuzzInput.split
// says), header parsed and every record converted.
@testable import Shards
#if canImport(Converters)
@testable import Converters
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let (images, labels) = FuzzInput.split(UnsafeRawBufferPointer(start: data, count: count))
    let imagesPath = FuzzInput.write(images, to: "images.npy"), labelsPath = FuzzInput.write(labels, to: "labels.npy")
    do {
        let input = try NPYInput(images: imagesPath, labels: labelsPath)
        if max(input.recordCount, 16) * input.recordSize <= 64 << 20 {  // drain holds 16 records
            try FuzzInput.drain(try NPYReader(input), recordSize: input.recordSize)
        }
    } catch is ShardError {
    } catch {
        fatalError("NPYInput threw something other than ShardError: \(error)")
    }
    return 0
}
