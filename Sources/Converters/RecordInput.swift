#if canImport(Glibc)
import Glibc
#endif
import Shards

/// A source of records for conversion: a known count of fixed-size records whose fields are an
/// `image` and an int32 scalar `label`, read sequentially in source order.
public protocol RecordInput {
    /// The record's fields in storage order (classCount is decided by the converter).
    var fields: [Field] { get }
    var recordCount: Int { get }
    /// The classes the format itself implies (CIFAR-10: 10), or nil to use max label + 1.
    var impliedClassCount: Int? { get }
    var provenance: SourceProvenance { get }
    /// The file that holds record `index`'s label, for error messages.
    func labelFile(ofRecord index: Int) -> String
    /// Starts a new pass over the records from the first.
    func makeReader() throws -> RecordInputReader
}

/// One pass over a `RecordInput`.
public protocol RecordInputReader: AnyObject {
    /// Fills `destination` with up to `destination.count / recordSize` whole records in the
    /// schema's layout and returns how many it wrote; 0 at the end. Throws on malformed or
    /// truncated input, naming the file.
    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int
}

extension RecordInput {
    public var impliedClassCount: Int? { nil }
    public var recordSize: Int { fields.reduce(0) { $0 + $1.byteCount } }
}

/// The two fields every image converter produces.
func imageFields(type: FieldType, shape: [Int]) -> [Field] {
    [Field(name: "image", type: type, shape: shape), Field(name: "label", type: .int32, shape: [])]
}

/// Writes a label as little-endian int32 at `pointer`.
@inline(__always) func storeLabel(_ label: Int32, at pointer: UnsafeMutableRawPointer) {
    pointer.storeBytes(of: label.littleEndian, as: Int32.self)
}

/// Provenance entry for a file (its path and size on disk, 0 if it cannot be read).
func sourceFile(_ path: String) -> SourceFile {
    var st = stat()
    return SourceFile(path: path, bytes: stat(path, &st) == 0 ? Int(st.st_size) : 0)
}
