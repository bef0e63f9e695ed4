// CIFAR binary inputs (tools/fuzz.sh cifar): one file read as CIFAR-10, CIFAR-100 fine and coarse.
@testable import Shards
#if canImport(Converters)
@testable import Converters
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCIFAR(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let path = FuzzInput.write(UnsafeRawBufferPointer(start: data, count: count), to: "data_batch.bin")
    for (variant, coarse) in [(CIFARInput.Variant.cifar10, false), (.cifar100, false), (.cifar100, true)] {
        do {
            let input = try CIFARInput(files: [path, path], variant: variant, coarseLabels: coarse)
            try FuzzInput.drain(CIFARReader(input), recordSize: input.recordSize)
        } catch is ShardError {
        } catch {
            fatalError("CIFARInput threw something other than ShardError: \(error)")
        }
    }
    return 0
}
