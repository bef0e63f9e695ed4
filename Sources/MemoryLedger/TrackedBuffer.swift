/// A buffer of `count` elements whose bytes are booked in a ledger for as long as it lives.
/// Identity matters (the ledger must see it freed exactly once), so it is a class; the memory
/// is released by `deinit`.
public final class TrackedBuffer<Element>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Element>
    public let count: Int
    /// What the bytes are booked as; `rebook(as:)` changes it (weights that freeze).
    public private(set) var category: Category
    public let layer: Int?
    public let label: StaticString
    /// A strong reference: the buffer must be able to book its free however long it outlives
    /// the code that made the ledger (Swift may release a local `Ledger` right after its last
    /// use, before the buffers made from it are freed). The ledger holds no references back.
    public let ledger: Ledger

    /// Allocates uninitialised storage for `count` elements (trivial element types only).
    public init(count: Int, category: Category, layer: Int?, label: StaticString, ledger: Ledger = .shared) {
        precondition(count >= 0, "negative element count for \(label)")
        precondition(_isPOD(Element.self), "TrackedBuffer holds trivial element types only")
        self.count = count
        self.category = category
        self.layer = layer
        self.label = label
        self.ledger = ledger
        let raw = ledger.allocate(bytes: count * MemoryLayout<Element>.stride, category: category, layer: layer, label: label)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
    }

    deinit {
        ledger.free(UnsafeMutableRawPointer(pointer), bytes: count * MemoryLayout<Element>.stride,
                    category: category, layer: layer, label: label)
    }

    /// Books the buffer's bytes under `category` from now on (the same bytes, the same layer):
    /// a block's weights become `frozenWeights` when it stops training.
    public func rebook(as category: Category) {
        guard category != self.category else { return }
        ledger.rebook(UnsafeMutableRawPointer(pointer), bytes: byteCount, layer: layer, label: label, from: self.category, to: category)
        self.category = category
    }

    public var byteCount: Int { count * MemoryLayout<Element>.stride }
    public var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}
