import MemoryLedger

/// A dense Float32 tensor, row-major, whose storage belongs to the memory ledger.
/// Views (`rows(_:)`, `reshaped(_:)`) share storage without copying; the bytes are freed when
/// the last tensor that uses the storage goes away.
public final class Tensor: @unchecked Sendable {
    public let storage: TrackedBuffer<Float>
    /// First element of this tensor inside `storage`.
    public let offset: Int
    public let shape: [Int]
    public let count: Int

    /// Allocates a tensor booked under `category` and `layer`; contents are zeroed unless
    /// `zeroed` is false.
    public init(_ shape: [Int], _ category: Category, layer: Int? = nil, label: StaticString,
                ledger: Ledger = .shared, zeroed: Bool = true) {
        let count = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape) for \(label)")
        storage = TrackedBuffer(count: count, category: category, layer: layer, label: label, ledger: ledger)
        offset = 0
        self.shape = shape
        self.count = count
        if zeroed { storage.pointer.initialize(repeating: 0, count: count) }
    }

    /// Wraps existing ledger-owned storage (for example a batch buffer filled by the loader).
    public init(storage: TrackedBuffer<Float>, offset: Int = 0, shape: [Int]) {
        precondition(offset + shape.reduce(1, *) <= storage.count, "shape \(shape) at \(offset) exceeds storage of \(storage.count)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.count = shape.reduce(1, *)
    }

    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var rank: Int { shape.count }
    public var category: Category { storage.category }
    public var layer: Int? { storage.layer }
    public var byteCount: Int { count * MemoryLayout<Float>.stride }
    /// Size of dimension 0 (the batch).
    public var rowCount: Int { shape.first ?? 1 }
    /// Elements per row: the product of all dimensions after the first.
    public var rowSize: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    /// Rows `range` of dimension 0, sharing storage.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= rowCount, "rows \(range) out of 0..<\(rowCount)")
        var s = shape
        s[0] = range.count
        return Tensor(storage: storage, offset: offset + range.lowerBound * rowSize, shape: s)
    }

    /// The same elements with another shape of equal count, sharing storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(storage: storage, offset: offset, shape: newShape)
    }

    /// Copies the elements into an array (tests, checkpoints and reports).
    public var array: [Float] { Array(buffer) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        pointer.update(from: other.pointer, count: count)
    }

    public func copy(from values: [Float]) {
        precondition(values.count == count, "copy of \(values.count) values into \(shape)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }

    subscript(flat i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape) \(storage.label) (\(category))" }
}
