#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file opened for reading: memory-mapped read-only, with its header validated in
/// full (lengths, JSON, dtypes, shapes, offsets in bounds, contiguous and non-overlapping)
/// before any tensor's bytes are handed out. The mapping lives as long as this object.
public final class SafeTensorsFile: @unchecked Sendable {
    /// One tensor as the header describes it.
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range inside the data section (which starts right after the header).
        public let dataOffsets: Range<Int>

        public var elementCount: Int { shape.reduce(1, *) }
        public var byteCount: Int { dataOffsets.count }
    }

    /// The path the file was opened from; errors name it.
    public let path: String
    /// The header's `__metadata__` (empty if it has none).
    public let metadata: [String: String]
    /// Every tensor, in the order their bytes are stored.
    public let tensors: [TensorInfo]

    private let mapping: UnsafeRawPointer
    private let fileSize: Int
    private let dataStart: Int
    private let index: [String: Int]

    /// Opens and validates `path`; throws `SafeTensorsError` naming the file (and the tensor)
    /// at fault.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SafeTensorsError.io(file: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SafeTensorsError.io(file: path, operation: "stat", errno: errno) }
        fileSize = Int(status.st_size)
        guard fileSize >= 8 else { throw SafeTensorsError.fileTooShort(file: path, size: fileSize) }
        // Mapping instead of reading: a checkpoint is read once, tensor by tensor, into tensors
        // the ledger owns; the page cache holds the file, not a second heap copy.
        guard let mapped = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw SafeTensorsError.io(file: path, operation: "mmap", errno: errno)
        }
        mapping = UnsafeRawPointer(mapped)
        let header: SafeTensorsHeader
        do {
            header = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(start: mapped, count: fileSize), file: path)
        } catch {
            munmap(mapped, fileSize)
            throw error
        }
        metadata = header.metadata
        tensors = header.tensors
        dataStart = header.dataStart
        index = Dictionary(uniqueKeysWithValues: header.tensors.enumerated().map { ($1.name, $0) })
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize)
    }

    /// Tensor names in sorted order.
    public var names: [String] { tensors.map(\.name).sorted() }

    /// The header entry of `name`.
    public func info(_ name: String) throws -> TensorInfo {
        guard let i = index[name] else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        return tensors[i]
    }

    /// Calls `body` with the raw little-endian bytes of `name`, valid only during the call.
    public func withBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let tensor = try info(name)
        let start = mapping + dataStart + tensor.dataOffsets.lowerBound
        return try body(UnsafeRawBufferPointer(start: start, count: tensor.byteCount))
    }

    /// The raw little-endian bytes of `name` in the file's mapping: valid while this file is
    /// alive (to write them into another file without a copy, keep the file alive until then).
    public func mappedBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let tensor = try info(name)
        return UnsafeRawBufferPointer(start: mapping + dataStart + tensor.dataOffsets.lowerBound, count: tensor.byteCount)
    }

    /// The elements of `name` as an array; the element type must match the stored dtype.
    public func array<T: SafeTensorsElement>(_ name: String, as type: T.Type = T.self) throws -> [T] {
        let tensor = try info(name)
        guard tensor.dtype == T.safeTensorsDType else {
            throw SafeTensorsError.wrongDType(file: path, tensor: name, stored: tensor.dtype, requested: T.safeTensorsDType)
        }
        return try withBytes(name) { bytes in
            // Copy rather than rebind: offsets in the file need not be aligned for T.
            [T](unsafeUninitializedCapacity: tensor.elementCount) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes)
                initialized = tensor.elementCount
            }
        }
    }

    /// The elements of an F32 tensor.
    public func floats(_ name: String) throws -> [Float] { try array(name, as: Float.self) }

    /// Copies the bytes of `name` into `destination`, which must have exactly its byte count
    /// (for example a ledger-owned tensor of the same shape).
    public func copy(_ name: String, into destination: UnsafeMutableRawBufferPointer) throws {
        try withBytes(name) { bytes in
            guard bytes.count == destination.count else {
                throw SafeTensorsError.sizeMismatch(file: path, tensor: name, expectedBytes: destination.count, actualBytes: bytes.count)
            }
            destination.copyMemory(from: bytes)
        }
    }
}
