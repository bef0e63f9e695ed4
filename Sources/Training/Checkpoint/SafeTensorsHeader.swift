import Foundation

/// The validated contents of a safetensors header: every tensor's dtype, shape and byte range,
/// checked against each other and against the data section before anything reads the data.
struct SafeTensorsHeader {
    /// The reference implementation refuses headers above 100 MB; so do we, before parsing.
    static let maxHeaderLength: UInt64 = 100_000_000

    var metadata: [String: String]
    /// In data order (ascending offsets).
    var tensors: [SafeTensorsFile.TensorInfo]
    /// Byte offset of the data section in the file (8 + header length).
    var dataStart: Int

    /// Parses and validates the first bytes of `file` (the whole file: the data section's size
    /// is checked too). `file` only names the file in errors.
    static func parse(_ bytes: UnsafeRawBufferPointer, file: String) throws -> SafeTensorsHeader {
        guard bytes.count >= 8 else { throw SafeTensorsError.fileTooShort(file: file, size: bytes.count) }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        let available = bytes.count - 8
        guard headerLength <= UInt64(available) else {
            throw SafeTensorsError.headerBeyondFile(file: file, headerLength: headerLength, available: available)
        }
        guard headerLength <= maxHeaderLength else {
            throw SafeTensorsError.invalidHeader(file: file, reason: "its length \(headerLength) exceeds the limit of \(maxHeaderLength) bytes")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw SafeTensorsError.invalidHeader(file: file, reason: "it does not start with '{'")
        }
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
                throw SafeTensorsError.invalidHeader(file: file, reason: "it is not a JSON object")
            }
            object = parsed
        } catch let error as SafeTensorsError {
            throw error
        } catch {
            throw SafeTensorsError.invalidHeader(file: file, reason: "it does not parse as UTF-8 JSON")
        }

        var metadata: [String: String] = [:]
        var tensors: [SafeTensorsFile.TensorInfo] = []
        for (name, value) in object {
            if name == "__metadata__" {
                metadata = try parseMetadata(value, file: file)
            } else {
                tensors.append(try parseEntry(name: name, value, file: file))
            }
        }
        try checkLayout(&tensors, dataSize: bytes.count - dataStart, file: file)
        return SafeTensorsHeader(metadata: metadata, tensors: tensors, dataStart: dataStart)
    }

    private static func parseMetadata(_ value: Any, file: String) throws -> [String: String] {
        guard let object = value as? [String: Any] else {
            throw SafeTensorsError.invalidMetadata(file: file, reason: "it is not a JSON object")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in object {
            guard let text = entry as? String else {
                throw SafeTensorsError.invalidMetadata(file: file, reason: "the value of '\(key)' is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(name: String, _ value: Any, file: String) throws -> SafeTensorsFile.TensorInfo {
        func invalid(_ reason: String) -> SafeTensorsError { .invalidEntry(file: file, tensor: name, reason: reason) }
        guard let entry = value as? [String: Any] else { throw invalid("its entry is not a JSON object") }
        guard let dtypeName = entry["dtype"] as? String else { throw invalid("'dtype' is missing or not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard let shapeValues = entry["shape"] as? [Any] else { throw invalid("'shape' is missing or not an array") }
        var shape: [Int] = []
        for dimension in shapeValues {
            guard let n = integer(dimension), n >= 0 else { throw invalid("'shape' holds \(dimension), not a non-negative integer") }
            shape.append(n)
        }
        guard let offsetValues = entry["data_offsets"] as? [Any], offsetValues.count == 2,
              let begin = integer(offsetValues[0]), let end = integer(offsetValues[1]), begin >= 0, begin <= end else {
            throw invalid("'data_offsets' is missing or not [begin, end] with 0 <= begin <= end")
        }
        var expected = dtype.byteSize
        for n in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: n)
            guard !overflow else { throw invalid("its shape \(shape) has more elements than can be addressed") }
            expected = product
        }
        guard end - begin == expected else {
            throw SafeTensorsError.sizeMismatch(file: file, tensor: name, expectedBytes: expected, actualBytes: end - begin)
        }
        return SafeTensorsFile.TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// Tensors must tile the data section exactly: sorted by offset, each begins where the
    /// previous one ends, the first at 0 and the last at the end of the file.
    private static func checkLayout(_ tensors: inout [SafeTensorsFile.TensorInfo], dataSize: Int, file: String) throws {
        tensors.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var cursor = 0
        var previous: String?
        for tensor in tensors {
            let range = tensor.dataOffsets
            if range.upperBound > dataSize {
                throw SafeTensorsError.dataBeyondFile(file: file, tensor: tensor.name, end: range.upperBound, available: dataSize)
            }
            if range.lowerBound < cursor, let previous {
                throw SafeTensorsError.overlappingData(file: file, tensor: tensor.name, other: previous)
            }
            if range.lowerBound > cursor {
                throw SafeTensorsError.gapInData(file: file, tensor: tensor.name, expectedBegin: cursor, begin: range.lowerBound)
            }
            cursor = range.upperBound
            previous = tensor.name
        }
        if cursor < dataSize {
            throw SafeTensorsError.trailingData(file: file, unusedBytes: dataSize - cursor)
        }
    }

    /// A JSON integer: JSONSerialization yields NSNumber for numbers and booleans alike, so
    /// booleans and non-integral numbers are told apart by their stored type.
    private static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        switch String(cString: number.objCType) {
        case "c", "C", "B", "f", "d": return nil   // bool, float, double
        default: return value as? Int
        }
    }
}
