#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What is wrong with a safetensors file or with tensors handed to the writer. Every case names
/// the file, and the tensor where one is at fault; `description` reads as a sentence.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    /// A system call failed (`operation` is e.g. "open", "write", "fsync", "rename").
    case io(file: String, operation: String, errno: Int32)
    /// The file is shorter than the 8-byte header length.
    case fileTooShort(file: String, size: Int)
    /// The header length points past the end of the file (truncated file or a lying length).
    case headerBeyondFile(file: String, headerLength: UInt64, available: Int)
    /// The header is not UTF-8 JSON describing an object.
    case invalidHeader(file: String, reason: String)
    /// A tensor entry lacks a field or has one of the wrong kind.
    case invalidEntry(file: String, tensor: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    /// The tensor's byte range does not hold dtype size x element count bytes.
    case sizeMismatch(file: String, tensor: String, expectedBytes: Int, actualBytes: Int)
    /// The tensor's data ends past the end of the file (truncated file or a lying offset).
    case dataBeyondFile(file: String, tensor: String, end: Int, available: Int)
    /// Two tensors share bytes.
    case overlappingData(file: String, tensor: String, other: String)
    /// Bytes between two tensors (or before the first) that belong to no tensor.
    case gapInData(file: String, tensor: String, expectedBegin: Int, begin: Int)
    /// Bytes after the last tensor that belong to no tensor.
    case trailingData(file: String, unusedBytes: Int)
    case invalidMetadata(file: String, reason: String)
    /// A tensor asked for by name is not in the file.
    case missingTensor(file: String, tensor: String)
    /// A tensor was read as another element type than it holds.
    case wrongDType(file: String, tensor: String, stored: SafeTensorsDType, requested: SafeTensorsDType)
    /// The writer was given two tensors with one name.
    case duplicateName(file: String, tensor: String)
    /// The writer was given a tensor whose bytes, shape or name cannot be stored.
    case invalidTensor(file: String, tensor: String, reason: String)

    public var description: String {
        switch self {
        case let .io(file, operation, code):
            return "\(file): \(operation) failed: \(String(cString: strerror(code))) (errno \(code))."
        case let .fileTooShort(file, size):
            return "\(file): the file has \(size) bytes, fewer than the 8-byte header length every safetensors file starts with."
        case let .headerBeyondFile(file, headerLength, available):
            return "\(file): the header length says \(headerLength) bytes but only \(available) follow it; the file is truncated or the length is wrong."
        case let .invalidHeader(file, reason):
            return "\(file): the JSON header is invalid: \(reason)."
        case let .invalidEntry(file, tensor, reason):
            return "\(file): tensor '\(tensor)': \(reason)."
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has dtype '\(dtype)', which is not one of \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", "))."
        case let .sizeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' spans \(actual) bytes but its dtype and shape need \(expected)."
        case let .dataBeyondFile(file, tensor, end, available):
            return "\(file): tensor '\(tensor)' ends at data byte \(end) but the data section has only \(available) bytes; the file is truncated or the offsets are wrong."
        case let .overlappingData(file, tensor, other):
            return "\(file): tensor '\(tensor)' overlaps tensor '\(other)'."
        case let .gapInData(file, tensor, expectedBegin, begin):
            return "\(file): tensor '\(tensor)' begins at data byte \(begin), but the previous tensor ends at \(expectedBegin); tensors must be contiguous."
        case let .trailingData(file, unused):
            return "\(file): \(unused) bytes after the last tensor belong to no tensor."
        case let .invalidMetadata(file, reason):
            return "\(file): __metadata__ is invalid: \(reason)."
        case let .missingTensor(file, tensor):
            return "\(file): there is no tensor named '\(tensor)'."
        case let .wrongDType(file, tensor, stored, requested):
            return "\(file): tensor '\(tensor)' holds \(stored.rawValue), not \(requested.rawValue)."
        case let .duplicateName(file, tensor):
            return "\(file): two tensors are named '\(tensor)'."
        case let .invalidTensor(file, tensor, reason):
            return "\(file): cannot write tensor '\(tensor)': \(reason)."
        }
    }
}
