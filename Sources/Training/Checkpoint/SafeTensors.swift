import FileSystem
/// The safetensors checkpoint format: an 8-byte little-endian header length N, N bytes of JSON
/// header (padded with spaces so the data starts 8-byte aligned), then the raw little-endian
/// bytes of every tensor, back to back. The header maps each name to
/// `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` (offsets relative to the
/// data section) and may hold `"__metadata__": {string: string}`.
///
/// Layerwise writes tensors in sorted-name order (byte order of the UTF-8 names) with the
/// metadata first, so equal checkpoints are equal files.
public enum SafeTensors {
    /// Writes `tensors` and `metadata` to `path` atomically: readers see the old file or the
    /// complete new one. Throws `SafeTensorsError` for invalid tensors (duplicate or empty
    /// names, bytes that do not match dtype x shape) before touching the file system.
    public static func write(_ tensors: [SafeTensorsEntry], metadata: [String: String] = [:], to path: String) throws {
        let (header, ordered) = try makeHeader(tensors, metadata: metadata, file: path)
        do {
            try AtomicFile(path: path).write { sink in
                try header.withUnsafeBytes { try sink.write($0) }
                for tensor in ordered { try tensor.withBytes { try sink.write($0) } }
            }
        } catch let FileSystemError.io(file, operation, code) {
            throw SafeTensorsError.io(file: file, operation: operation, errno: code)
        }
    }

    /// The bytes `write` would put in the file (for tests and small in-memory uses).
    public static func encode(_ tensors: [SafeTensorsEntry], metadata: [String: String] = [:]) throws -> [UInt8] {
        let (header, ordered) = try makeHeader(tensors, metadata: metadata, file: "<memory>")
        var bytes = header
        for tensor in ordered { tensor.withBytes { bytes.append(contentsOf: $0) } }
        return bytes
    }

    /// Opens and validates a safetensors file (see `SafeTensorsFile`).
    public static func read(_ path: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: path)
    }

    /// The length prefix and padded JSON header, and the tensors in the order their bytes follow.
    static func makeHeader(_ tensors: [SafeTensorsEntry], metadata: [String: String], file: String) throws -> ([UInt8], [SafeTensorsEntry]) {
        let ordered = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        var json = "{"
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(quoted($0.key)):\(quoted($0.value))" }
            json += "\"__metadata__\":{\(pairs.joined(separator: ","))}"
        }
        var offset = 0
        var previous: String?
        var needsComma = !metadata.isEmpty
        for tensor in ordered {
            func invalid(_ reason: String) -> SafeTensorsError { .invalidTensor(file: file, tensor: tensor.name, reason: reason) }
            if tensor.name == previous { throw SafeTensorsError.duplicateName(file: file, tensor: tensor.name) }
            previous = tensor.name
            if tensor.name.isEmpty || tensor.name == "__metadata__" { throw invalid("the name is empty or reserved") }
            if tensor.shape.contains(where: { $0 < 0 }) { throw invalid("its shape \(tensor.shape) has a negative dimension") }
            var expected = tensor.dtype.byteSize
            for n in tensor.shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: n)
                if overflow { throw invalid("its shape \(tensor.shape) has more elements than can be addressed") }
                expected = product
            }
            if tensor.byteCount != expected {
                throw invalid("it has \(tensor.byteCount) bytes but \(tensor.dtype.rawValue) x \(tensor.shape) needs \(expected)")
            }
            if needsComma { json += "," }
            needsComma = true
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json += "\(quoted(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + expected)]}"
            offset += expected
        }
        json += "}"
        var header = Array(json.utf8)
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        let length = UInt64(header.count).littleEndian
        return (withUnsafeBytes(of: length) { Array($0) } + header, ordered)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
