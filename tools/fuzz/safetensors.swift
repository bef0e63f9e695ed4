// Safetensors checkpoints (tools/fuzz.sh safetensors): the header validated by SafeTensorsFile,
// then every tensor's bytes read as its dtype says.
@testable import Training

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let path = FuzzInput.write(UnsafeRawBufferPointer(start: data, count: count), to: "checkpoint.safetensors")
    do {
        let file = try SafeTensorsFile(path: path)
        _ = file.metadata
        for name in file.names {
            let info = try file.info(name)
            var sum = 0
            try file.withBytes(name) { bytes in for b in bytes { sum &+= Int(b) } }
            if info.dtype == .f32 { _ = try file.floats(name) }
            var scratch = [UInt8](repeating: 0, count: info.byteCount)
            try scratch.withUnsafeMutableBytes { try file.copy(name, into: $0) }
        }
    } catch is SafeTensorsError {
    } catch {
        fatalError("SafeTensorsFile threw something other than SafeTensorsError: \(error)")
    }
    return 0
}
