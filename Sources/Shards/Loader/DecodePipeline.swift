#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MemoryLedger

/// Decodes blocks into a fixed set of preallocated slot buffers, ahead of the consumer, on
/// background threads (or on the caller's thread when there are none).
///
/// Jobs are numbered in schedule order and handed to whichever thread is free, so with several
/// threads they may finish out of order; the consumer takes them strictly in order, which is
/// what keeps the output independent of the thread count. A job needs a free slot buffer, so at
/// most `slots.count` blocks are ever decoded or held: memory is fixed when the pipeline is made.
final class DecodePipeline: @unchecked Sendable {
    /// A finished job: which slot buffer holds block `block`, and its records (or the error).
    private struct Finished {
        var slot: Int
        var block: Int
        var records: Int
        var error: LoaderError?
    }

    /// The slot buffers, each `slotBytes` long.
    let slots: [TrackedBuffer<UInt8>]
    let slotBytes: Int
    let threadCount: Int
    private let source: RecordBlockSource
    private let decoders: [BlockDecoder]

    // Everything below is guarded by `mutex`.
    private var mutex = pthread_mutex_t()
    /// Workers wait here for a job and a free slot.
    private var workAvailable = pthread_cond_t()
    /// The consumer waits here for its job to finish, `restart` for in-flight jobs to end.
    private var jobFinished = pthread_cond_t()
    private var freeSlots: [Int]
    /// Finished jobs not yet taken, at index job % slots.count. Jobs between `nextToTake` and
    /// `assigned` each hold a slot, so there are never more of them than slots.
    private var finished: [Finished?]
    private var schedule: DecodeSchedule?
    private var upcoming: Int?
    private var assigned = 0
    private var nextToTake = 0
    private var inFlight = 0
    /// Bumped by `restart`: jobs started under an older generation are discarded.
    private var generation = 0
    private var stopping = false
    private var workers: [pthread_t] = []
    /// Declared last so it is released after `slots` (buffers refer to their ledger unowned).
    private let ledger: Ledger

    init(source: RecordBlockSource, slotCount: Int, threads: Int, ledger: Ledger) throws {
        precondition(slotCount > 0)
        self.source = source
        self.ledger = ledger
        slotBytes = source.maxBlockBytes
        threadCount = threads
        slots = (0..<slotCount).map { _ in
            TrackedBuffer<UInt8>(count: source.maxBlockBytes, category: .loader, layer: nil, label: "loader.slot", ledger: ledger)
        }
        decoders = try (0..<max(threads, 1)).map { _ in try source.makeDecoder() }
        freeSlots = Array((0..<slotCount).reversed())
        finished = Array(repeating: nil, count: slotCount)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&workAvailable, nil)
        pthread_cond_init(&jobFinished, nil)
        for index in 0..<threads {
            let start = Unmanaged.passRetained(WorkerStart(pipeline: self, decoder: decoders[index])).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pipeline.workerLoop(decoder: start.decoder)
                return nil
            }, start)
            precondition(rc == 0, "could not start a loader decode thread (error \(rc))")
            workers.append(thread)
        }
    }

    deinit {
        pthread_cond_destroy(&workAvailable)
        pthread_cond_destroy(&jobFinished)
        pthread_mutex_destroy(&mutex)
    }

    /// Ends the worker threads and waits for them. The owner calls this before dropping the
    /// pipeline (the threads hold it alive until then).
    func stop() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&workAvailable)
        pthread_mutex_unlock(&mutex)
        for thread in workers { pthread_join(thread, nil) }
        workers = []
    }

    /// Forgets all jobs (waiting for running decodes to end), frees every slot and starts on a
    /// new schedule. The consumer must drop the slots it held.
    func restart(_ newSchedule: DecodeSchedule) {
        pthread_mutex_lock(&mutex)
        generation += 1
        upcoming = nil  // no new jobs from the old schedule while we wait
        while inFlight > 0 { pthread_cond_wait(&jobFinished, &mutex) }
        freeSlots.removeAll(keepingCapacity: true)
        for slot in (0..<slots.count).reversed() { freeSlots.append(slot) }
        for i in finished.indices { finished[i] = nil }
        schedule = newSchedule
        upcoming = schedule!.next()
        assigned = 0
        nextToTake = 0
        pthread_cond_broadcast(&workAvailable)
        pthread_mutex_unlock(&mutex)
    }

    /// Takes the next job in schedule order, waiting for it if needed, and returns the slot that
    /// holds it. The caller owns the slot until `release`. `block` is what the plan expects: a
    /// mismatch is a bug in plan/schedule agreement, not a data fault.
    func take(block: Int) throws -> (slot: Int, records: Int) {
        pthread_mutex_lock(&mutex)
        let job = nextToTake
        let ring = job % slots.count
        if threadCount == 0 {
            // No read-ahead: decode exactly this job now, on the caller's thread.
            precondition(assigned == job, "inline decoding fell out of step")
            let (scheduled, slot) = assignJob()
            pthread_mutex_unlock(&mutex)
            let result = decode(block: scheduled, into: slot, with: decoders[0])
            pthread_mutex_lock(&mutex)
            finished[ring] = result
        }
        while finished[ring] == nil { pthread_cond_wait(&jobFinished, &mutex) }
        let result = finished[ring]!
        finished[ring] = nil
        nextToTake += 1
        if result.error != nil { freeSlots.append(result.slot); pthread_cond_signal(&workAvailable) }
        pthread_mutex_unlock(&mutex)
        precondition(result.block == block, "decode schedule disagrees with the epoch plan")
        if let error = result.error { throw error }
        return (result.slot, result.records)
    }

    /// Hands a slot back for the decoders to reuse.
    func release(slot: Int) {
        pthread_mutex_lock(&mutex)
        freeSlots.append(slot)
        pthread_cond_signal(&workAvailable)
        pthread_mutex_unlock(&mutex)
    }

    /// Under the mutex: the next scheduled block and a free slot for it.
    private func assignJob() -> (block: Int, slot: Int) {
        guard let block = upcoming, let slot = freeSlots.popLast() else {
            preconditionFailure("a decode job was requested with no block scheduled or no free slot")
        }
        upcoming = schedule!.next()
        assigned += 1
        return (block, slot)
    }

    private func workerLoop(decoder: BlockDecoder) {
        pthread_mutex_lock(&mutex)
        while true {
            while !stopping && (upcoming == nil || freeSlots.isEmpty) {
                pthread_cond_wait(&workAvailable, &mutex)
            }
            if stopping { break }
            let job = assigned
            let started = generation
            let (block, slot) = assignJob()
            inFlight += 1
            pthread_mutex_unlock(&mutex)
            let result = decode(block: block, into: slot, with: decoder)
            pthread_mutex_lock(&mutex)
            inFlight -= 1
            if started == generation {
                finished[job % slots.count] = result
            } else {
                // Started before a restart: its slot is already counted free again.
            }
            pthread_cond_broadcast(&jobFinished)
        }
        pthread_mutex_unlock(&mutex)
    }

    /// Decodes one block into a slot and checks the record count against the source's index.
    private func decode(block: Int, into slot: Int, with decoder: BlockDecoder) -> Finished {
        let destination = UnsafeMutableRawBufferPointer(start: slots[slot].pointer, count: slotBytes)
        do {
            let records = try decoder.decode(block: block, into: destination)
            let expected = source.recordCount(ofBlock: block)
            guard records == expected else {
                return Finished(slot: slot, block: block, records: 0,
                                error: .recordCountMismatch(block: block, expected: expected, decoded: records))
            }
            return Finished(slot: slot, block: block, records: records, error: nil)
        } catch let error as LoaderError {
            return Finished(slot: slot, block: block, records: 0, error: error)
        } catch {
            return Finished(slot: slot, block: block, records: 0, error: .decodeFailed(block: block, underlying: error))
        }
    }
}

/// What a new decode thread needs, passed through pthread_create's context pointer.
private final class WorkerStart {
    let pipeline: DecodePipeline
    let decoder: BlockDecoder
    init(pipeline: DecodePipeline, decoder: BlockDecoder) {
        self.pipeline = pipeline
        self.decoder = decoder
    }
}
