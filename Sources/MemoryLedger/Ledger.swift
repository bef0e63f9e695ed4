#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
/// glibc's mallopt (malloc.h is not part of the Glibc module).
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

/// One allocation or free, or a phase marker, as the bounded event history keeps it.
public struct LedgerEvent: Sendable {
    public enum Kind: UInt8, Sendable { case allocate, free, marker }
    /// Nanoseconds since the ledger was created.
    public var time: UInt64
    public var kind: Kind
    /// Signed change of live bytes (0 for markers).
    public var delta: Int
    public var category: Category
    public var phase: Phase
    /// Layer index, or -1 for none.
    public var layer: Int
    public var label: StaticString
    /// Live bytes of all categories just after the event.
    public var liveTotal: Int
    /// Live bytes of `category` just after the event.
    public var liveCategory: Int
}

/// Live bytes broken down by category and by layer at one instant.
public struct LedgerSnapshot: Sendable, Equatable {
    public var total: Int
    /// Indexed by `Category.rawValue`.
    public var byCategory: [Int]
    /// Index 0 is "no layer"; index i + 1 is layer i.
    public var byLayerSlot: [Int]
    /// Phase and layer that were current when this snapshot was taken.
    public var phase: Phase
    public var layer: Int

    public func bytes(_ category: Category) -> Int { byCategory[category.rawValue] }
    /// Bytes booked to `layer` (nil: buffers that belong to no layer).
    public func bytes(layer: Int?) -> Int {
        let slot = Ledger.slot(layer, capacity: byLayerSlot.count)
        return byLayerSlot[slot]
    }
    /// Layers that hold bytes, in order, with their bytes (nil = no layer).
    public var layers: [(layer: Int?, bytes: Int)] {
        byLayerSlot.enumerated().compactMap { slot, bytes in
            bytes == 0 ? nil : (slot == 0 ? nil : slot - 1, bytes)
        }
    }
}

/// A fault the ledger caught: a buffer freed twice, or freed with other metadata than it had.
public struct LedgerViolation: Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The allocator tracker. Every tensor buffer is allocated here and released by its owner's
/// deinit; the ledger keeps live bytes per category and per layer, the high-water mark with an
/// exact copy of the breakdown at that instant, per-phase maxima and a bounded event history.
///
/// Cost: one mutex and a handful of counter updates per event; nothing is allocated on the hot
/// path (all tables are preallocated). Debug builds also keep a table of live pointers to catch
/// double frees and leaks.
public final class Ledger: @unchecked Sendable {
    /// The process-wide ledger that tensors use unless given another.
    public static let shared = Ledger()

    public static let categoryCount = Category.allCases.count
    public static let phaseCount = Phase.allCases.count

    public let layerCapacity: Int
    public let eventCapacity: Int

    /// Allocated once: a pthread mutex must not move, and `&property` of a class gives no
    /// stable address.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let start: UInt64

    // Preallocated counters (never reallocated).
    private let live: UnsafeMutablePointer<Int>            // categoryCount
    private let liveLayer: UnsafeMutablePointer<Int>       // layerCapacity + 1
    private let peakCategory: UnsafeMutablePointer<Int>    // categoryCount
    private let peakLayer: UnsafeMutablePointer<Int>       // layerCapacity + 1
    private let phaseTotalMax: UnsafeMutablePointer<Int>   // phaseCount
    private let phaseCategoryMax: UnsafeMutablePointer<Int> // phaseCount * categoryCount
    private let events: UnsafeMutablePointer<LedgerEvent>  // eventCapacity
    private var liveTotal = 0
    private var peakTotal = 0
    private var peakPhase = Phase.idle
    private var peakLayerIndex = -1
    private var eventCount = 0
    private var droppedEvents = 0
    private var allocations = 0
    private var frees = 0
    private var currentPhase = Phase.idle
    private var currentLayer = -1
    private var recording = true
    #if DEBUG
    private var livePointers: [UnsafeMutableRawPointer: (bytes: Int, category: Category, layer: Int, label: StaticString)] = [:]
    private var caught: [LedgerViolation] = []
    #endif

    /// - Parameters:
    ///   - layerCapacity: layers 0..<layerCapacity are tracked separately; higher indices share the last slot.
    ///   - eventCapacity: events kept in the history; later events are counted as dropped.
    public init(layerCapacity: Int = 256, eventCapacity: Int = 1 << 16) {
        precondition(layerCapacity > 0 && eventCapacity >= 0)
        _ = Ledger.allocatorTuned
        self.layerCapacity = layerCapacity
        self.eventCapacity = eventCapacity
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        start = Ledger.monotonicNanos()
        live = .allocate(capacity: Ledger.categoryCount); live.initialize(repeating: 0, count: Ledger.categoryCount)
        peakCategory = .allocate(capacity: Ledger.categoryCount); peakCategory.initialize(repeating: 0, count: Ledger.categoryCount)
        liveLayer = .allocate(capacity: layerCapacity + 1); liveLayer.initialize(repeating: 0, count: layerCapacity + 1)
        peakLayer = .allocate(capacity: layerCapacity + 1); peakLayer.initialize(repeating: 0, count: layerCapacity + 1)
        phaseTotalMax = .allocate(capacity: Ledger.phaseCount); phaseTotalMax.initialize(repeating: 0, count: Ledger.phaseCount)
        phaseCategoryMax = .allocate(capacity: Ledger.phaseCount * Ledger.categoryCount)
        phaseCategoryMax.initialize(repeating: 0, count: Ledger.phaseCount * Ledger.categoryCount)
        events = .allocate(capacity: max(eventCapacity, 1))
    }

    deinit {
        live.deallocate(); peakCategory.deallocate(); liveLayer.deallocate(); peakLayer.deallocate()
        phaseTotalMax.deallocate(); phaseCategoryMax.deallocate(); events.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Bytes the ledger itself holds for its tables and history.
    public var ownBytes: Int {
        (2 * Ledger.categoryCount + 2 * (layerCapacity + 1) + Ledger.phaseCount * (1 + Ledger.categoryCount)) * MemoryLayout<Int>.stride
            + max(eventCapacity, 1) * MemoryLayout<LedgerEvent>.stride
    }

    static func slot(_ layer: Int?, capacity: Int) -> Int {
        guard let layer, layer >= 0 else { return 0 }
        return min(layer, capacity - 2) + 1
    }

    /// Set once per process, before the first tensor: serve tensors up to 4 MiB from the heap and
    /// never trim its top; larger ones are mmapped, so their pages go back to the kernel when freed.
    /// - With glibc's defaults a training step freed its big buffers back to the kernel (munmap,
    ///   brk shrink) and faulted them in again on the next step: about 9% of an mlp predsim step's
    ///   cycles were page faults and brk (`perf record`, `layerwise bench train`). Every mlp
    ///   buffer (the largest, a 1024 x 1024 weight gradient, is 4 MiB) stays in the heap.
    /// - Serving everything up to 32 MiB from the heap (the earlier setting) let conv nets'
    ///   activations of different sizes fragment it: `layerwise profile --model vgg8b --chunk 16`
    ///   (release, one run) had peak RSS 152 MiB above the ledger peak in local mode and 199 MiB in
    ///   backprop; with this 4 MiB cut 53 and 53 MiB, with a 1 MiB cut 44 and 41 MiB; the mlp's gap
    ///   is 34 MiB at any of them. The memory budget (`MemoryBudget.choose`) relies on this gap
    ///   being small and steady.
    static let allocatorTuned: Bool = {
        #if canImport(Glibc)
        let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD (malloc.h)
        let ok1 = glibcMallopt(mmapThreshold, (4 << 20) + (64 << 10))  // 4 MiB tensors plus malloc's header and alignment
        let ok2 = glibcMallopt(trimThreshold, Int32.max)
        return ok1 == 1 && ok2 == 1
        #else
        return false
        #endif
    }()

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    // MARK: allocation

    /// Allocates `bytes` (64-byte aligned) and books them. `bytes` is the logical size
    /// (element count x element size); a zero-byte request still returns a unique pointer.
    public func allocate(bytes: Int, category: Category, layer: Int?, label: StaticString) -> UnsafeMutableRawPointer {
        precondition(bytes >= 0, "negative allocation size for \(label)")
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, 64, max(bytes, 64))
        guard rc == 0, let pointer = raw else {
            fatalError("out of memory allocating \(bytes) bytes for \(label) (\(category))")
        }
        record(pointer: pointer, delta: bytes, isFree: false, category: category, layer: layer ?? -1, label: label)
        return pointer
    }

    /// Releases a buffer from `allocate`, with the same size and tags.
    public func free(_ pointer: UnsafeMutableRawPointer, bytes: Int, category: Category, layer: Int?, label: StaticString) {
        if record(pointer: pointer, delta: -bytes, isFree: true, category: category, layer: layer ?? -1, label: label) {
            Glibc.free(pointer)
        }
    }

    /// Moves a live buffer's bytes from one category to another: a free under `from` and an
    /// allocation under `to`, one after the other, so the live total (and so the peak) does not
    /// change; the history shows both events.
    public func rebook(_ pointer: UnsafeMutableRawPointer, bytes: Int, layer: Int?, label: StaticString, from: Category, to: Category) {
        guard record(pointer: pointer, delta: -bytes, isFree: true, category: from, layer: layer ?? -1, label: label) else { return }
        record(pointer: pointer, delta: bytes, isFree: false, category: to, layer: layer ?? -1, label: label)
    }

    /// Books an allocation made elsewhere (for example a memory-mapped region) without owning it.
    public func book(bytes: Int, category: Category, layer: Int?, label: StaticString) {
        _ = record(pointer: nil, delta: bytes, isFree: false, category: category, layer: layer ?? -1, label: label)
    }

    /// Releases bytes booked with `book`.
    public func unbook(bytes: Int, category: Category, layer: Int?, label: StaticString) {
        _ = record(pointer: nil, delta: -bytes, isFree: true, category: category, layer: layer ?? -1, label: label)
    }

    /// Returns false when the free must not go ahead (a double free caught in debug builds).
    @discardableResult
    private func record(pointer: UnsafeMutableRawPointer?, delta: Int, isFree: Bool, category: Category, layer: Int, label: StaticString) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        #if DEBUG
        if let pointer {
            if !isFree {
                livePointers[pointer] = (delta, category, layer, label)
            } else {
                guard let known = livePointers.removeValue(forKey: pointer) else {
                    caught.append(LedgerViolation(message: "\(label): freed a buffer that is not live (double free?)"))
                    return false
                }
                if known.bytes != -delta || known.category != category || known.layer != layer {
                    caught.append(LedgerViolation(message: "\(label): freed with \(-delta) bytes as \(category) layer \(layer), allocated as \(known.bytes) bytes \(known.category) layer \(known.layer)"))
                }
            }
        }
        #endif
        let c = category.rawValue
        live[c] &+= delta
        liveLayer[Ledger.slot(layer, capacity: layerCapacity + 1)] &+= delta
        liveTotal &+= delta
        if isFree { frees &+= 1 } else { allocations &+= 1 }
        if delta > 0 {
            if liveTotal > peakTotal {
                peakTotal = liveTotal
                peakCategory.update(from: live, count: Ledger.categoryCount)
                peakLayer.update(from: liveLayer, count: layerCapacity + 1)
                peakPhase = currentPhase
                peakLayerIndex = currentLayer
            }
            let p = currentPhase.rawValue
            if liveTotal > phaseTotalMax[p] { phaseTotalMax[p] = liveTotal }
            let pc = p &* Ledger.categoryCount &+ c
            if live[c] > phaseCategoryMax[pc] { phaseCategoryMax[pc] = live[c] }
        }
        if recording {
            appendEvent(LedgerEvent(time: Ledger.monotonicNanos() &- start, kind: isFree ? .free : .allocate,
                                    delta: delta, category: category, phase: currentPhase, layer: layer,
                                    label: label, liveTotal: liveTotal, liveCategory: live[c]))
        }
        return true
    }

    /// The event is built only if it will be kept: once the history is full, a dropped event
    /// costs a counter increment instead of a clock read (measured by `layerwise bench
    /// foundation`: 13 M -> 18.5 M allocs+frees per second with a full history).
    private func appendEvent(_ event: @autoclosure () -> LedgerEvent) {
        if eventCount < eventCapacity {
            events[eventCount] = event()
            eventCount &+= 1
        } else {
            droppedEvents &+= 1
        }
    }

    // MARK: phases

    /// Sets the phase and layer that following allocations are attributed to, and marks the
    /// change in the event history (reports draw layer bands and trace slices from markers).
    public func enter(_ phase: Phase, layer: Int? = nil, label: StaticString = "") {
        pthread_mutex_lock(mutex)
        currentPhase = phase
        currentLayer = layer ?? -1
        // Bytes already live when a phase begins are live during it: count them toward the
        // phase's maxima here, since a phase that only frees would otherwise report 0.
        let p = phase.rawValue
        if liveTotal > phaseTotalMax[p] { phaseTotalMax[p] = liveTotal }
        for c in 0..<Ledger.categoryCount {
            let pc = p &* Ledger.categoryCount &+ c
            if live[c] > phaseCategoryMax[pc] { phaseCategoryMax[pc] = live[c] }
        }
        if recording {
            appendEvent(LedgerEvent(time: Ledger.monotonicNanos() &- start, kind: .marker, delta: 0,
                                    category: .activations, phase: phase, layer: currentLayer, label: label,
                                    liveTotal: liveTotal, liveCategory: live[Category.activations.rawValue]))
        }
        pthread_mutex_unlock(mutex)
    }

    public var phase: Phase {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return currentPhase
    }

    /// Turns the event history on or off (counters always run).
    public func setRecording(_ on: Bool) {
        pthread_mutex_lock(mutex); recording = on; pthread_mutex_unlock(mutex)
    }

    // MARK: reading

    /// Live bytes now.
    public func current() -> LedgerSnapshot {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return LedgerSnapshot(total: liveTotal,
                              byCategory: Array(UnsafeBufferPointer(start: live, count: Ledger.categoryCount)),
                              byLayerSlot: Array(UnsafeBufferPointer(start: liveLayer, count: layerCapacity + 1)),
                              phase: currentPhase, layer: currentLayer)
    }

    /// The high-water mark of live bytes, with the breakdown at that instant.
    public func peak() -> LedgerSnapshot {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return LedgerSnapshot(total: peakTotal,
                              byCategory: Array(UnsafeBufferPointer(start: peakCategory, count: Ledger.categoryCount)),
                              byLayerSlot: Array(UnsafeBufferPointer(start: peakLayer, count: layerCapacity + 1)),
                              phase: peakPhase, layer: peakLayerIndex)
    }

    /// Highest live total seen while `phase` was current.
    public func phasePeak(_ phase: Phase) -> Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return phaseTotalMax[phase.rawValue]
    }

    /// Highest live bytes of `category` seen while `phase` was current.
    public func phasePeak(_ phase: Phase, _ category: Category) -> Int {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return phaseCategoryMax[phase.rawValue * Ledger.categoryCount + category.rawValue]
    }

    /// Restarts peak tracking from what is live now (the peak and the per-phase maxima become
    /// the current live bytes), so a window of work can be measured on its own.
    public func resetPeaks() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        peakTotal = liveTotal
        peakCategory.update(from: live, count: Ledger.categoryCount)
        peakLayer.update(from: liveLayer, count: layerCapacity + 1)
        peakPhase = currentPhase
        peakLayerIndex = currentLayer
        for p in 0..<Ledger.phaseCount {
            phaseTotalMax[p] = liveTotal
            for c in 0..<Ledger.categoryCount { phaseCategoryMax[p * Ledger.categoryCount + c] = live[c] }
        }
    }

    /// Clears the event history (counters are kept).
    public func clearEvents() {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        eventCount = 0
        droppedEvents = 0
    }

    /// The retained events, oldest first, and how many were dropped because the history was full.
    public func history() -> (events: [LedgerEvent], dropped: Int) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return (Array(UnsafeBufferPointer(start: events, count: eventCount)), droppedEvents)
    }

    /// Allocations and frees booked since creation.
    public var operationCounts: (allocations: Int, frees: Int) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return (allocations, frees)
    }

    /// Faults caught so far (debug builds only; empty in release builds).
    public var violations: [LedgerViolation] {
        #if DEBUG
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return caught
        #else
        return []
        #endif
    }

    /// Buffers still live, with their labels (debug builds only; release builds return an empty list).
    public func outstanding() -> [(label: String, bytes: Int, category: Category, layer: Int?)] {
        #if DEBUG
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return livePointers.values.map { ("\($0.label)", $0.bytes, $0.category, $0.layer < 0 ? nil : $0.layer) }
            .sorted { $0.label < $1.label }
        #else
        return []
        #endif
    }
}
