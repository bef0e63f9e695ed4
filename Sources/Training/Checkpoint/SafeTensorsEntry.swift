/// One named tensor for `SafeTensors.write`: its dtype, shape and little-endian bytes.
public struct SafeTensorsEntry {
    enum Storage {
        case bytes([UInt8])
        case floats([Float])
        case borrowed(UnsafeRawBufferPointer)
    }

    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    let storage: Storage

    /// A tensor given as raw little-endian bytes (dtype size x element count of them).
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        (self.name, self.dtype, self.shape, storage) = (name, dtype, shape, .bytes(bytes))
    }

    /// An F32 tensor given as floats (stored without a copy).
    public init(name: String, shape: [Int], floats: [Float]) {
        (self.name, dtype, self.shape, storage) = (name, .f32, shape, .floats(floats))
    }

    /// A tensor of any supported element type (copied into bytes).
    public init<T: SafeTensorsElement>(name: String, shape: [Int], values: [T]) {
        (self.name, dtype, self.shape) = (name, T.safeTensorsDType, shape)
        storage = .bytes(values.withUnsafeBytes { Array($0) })
    }

    /// A tensor whose bytes stay where they are (for example a ledger-owned `Tensor`'s buffer),
    /// so a large checkpoint is written without a second copy in memory. The caller keeps the
    /// bytes alive and unchanged until `SafeTensors.write` returns.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], borrowing bytes: UnsafeRawBufferPointer) {
        (self.name, self.dtype, self.shape, storage) = (name, dtype, shape, .borrowed(bytes))
    }

    var byteCount: Int {
        switch storage {
        case .bytes(let b): return b.count
        case .floats(let f): return f.count * MemoryLayout<Float>.stride
        case .borrowed(let b): return b.count
        }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch storage {
        case .bytes(let b): return try b.withUnsafeBytes(body)
        case .floats(let f): return try f.withUnsafeBytes(body)
        case .borrowed(let b): return try body(b)
        }
    }
}
