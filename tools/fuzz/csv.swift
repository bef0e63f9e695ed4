// CSV inputs (tools/fuzz.sh csv): one file scanned and converted with the default options, with
// uint8 features and a named label column, and with a stated shape.
@testable import Shards
#if canImport(Converters)
@testable import Converters
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let path = FuzzInput.write(UnsafeRawBufferPointer(start: data, count: count), to: "input.csv")
    let makers: [() throws -> CSVInput] = [
        { try CSVInput(path: path) },
        { try CSVInput(path: path, labelColumn: .name("label"), featureType: .uint8) },
        { try CSVInput(path: path, labelColumn: .index(1), header: false, shape: [2, 2, 1], delimiter: ";") },
    ]
    for make in makers {
        do {
            let input = try make()
            try FuzzInput.drain(try CSVReader(input), recordSize: input.recordSize)
        } catch is ShardError {
        } catch {
            fatalError("CSVInput threw something other than ShardError: \(error)")
        }
    }
    return 0
}
