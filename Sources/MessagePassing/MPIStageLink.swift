#if MPI
import CMPI
import Layers
import MemoryLedger
import Tensors
import Training

/// A pipeline stage's link over MPI: rank s sends to rank s + 1 and receives from rank s - 1.
///
/// A message is two MPI messages: a small header (tag 1: kind, step, examples, the hand-off's
/// shape, the blocks' statistics, the labels) and the hand-off's floats (tag 2), sent straight
/// from the tensor and received straight into a tensor the receiver books. MPI keeps messages
/// of one tag from one sender in order, so the two always pair up. Sends are non-blocking: each
/// takes a slot (its header bytes, its requests, its hand-off) until it completes; `settle`
/// completes the oldest until `inFlight` are left, so `inFlight + 1` slots always suffice.
final class MPIStageLink: StageLink {
    let stage: Int
    let stageCount: Int
    private let comm = lw_mpi_comm_world()
    private let maxBatch: Int
    private let maxBlocks: Int
    private let headerCapacity: Int

    private static let headerTag: Int32 = 1
    private static let handOffTag: Int32 = 2
    /// Int64 words before the statistics: kind, step, count, statistics count, hand-off rank, 4 dims.
    private static let headerWords = 9
    private static let maxDims = 4

    /// One send in flight: its header bytes, its two requests, the hand-off kept alive until sent.
    private final class Slot {
        let header: UnsafeMutableRawPointer
        let requests: UnsafeMutablePointer<MPI_Request?>
        var handOff: Tensor?
        var active = false

        init(capacity: Int) {
            header = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
            requests = UnsafeMutablePointer<MPI_Request?>.allocate(capacity: 2)
            requests.initialize(repeating: lw_mpi_request_null(), count: 2)
        }

        deinit {
            header.deallocate()
            requests.deallocate()
        }
    }

    private let slots: [Slot]
    let inFlight: Int
    /// Slots of outstanding sends, oldest first, from `oldest` on (a ring over `slots`).
    private var oldest = 0
    private var outstanding = 0
    private let receiveHeader: UnsafeMutableRawPointer
    private let receiveLabels: UnsafeMutablePointer<Int32>

    init(stage: Int, stageCount: Int, batchSize: Int, blocks: Int, inFlight: Int) {
        self.stage = stage
        self.stageCount = stageCount
        maxBatch = batchSize
        maxBlocks = blocks
        headerCapacity = MPIStageLink.headerWords * 8 + blocks * 3 * 4 + batchSize * 4
        self.inFlight = inFlight
        slots = (0...inFlight).map { _ in Slot(capacity: MPIStageLink.headerWords * 8 + blocks * 3 * 4 + batchSize * 4) }
        receiveHeader = UnsafeMutableRawPointer.allocate(byteCount: headerCapacity, alignment: 8)
        receiveLabels = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, batchSize))
    }

    deinit {
        receiveHeader.deallocate()
        receiveLabels.deallocate()
    }

    private func complete(_ slot: Slot) throws {
        guard slot.active else { return }
        guard MPI_Waitall(2, slot.requests, lw_mpi_statuses_ignore()) == MPI_SUCCESS else {
            throw TrainingError.stages("stage \(stage + 1): a send to stage \(stage + 2) failed")
        }
        slot.handOff = nil
        slot.active = false
    }

    func send(_ kind: StageMessageKind, step: Int, labels: UnsafeBufferPointer<Int32>, blockStats: [BlockStepStats], handOff: Tensor?) throws {
        precondition(stage + 1 < stageCount, "the last stage sends nothing")
        precondition(labels.count <= maxBatch && blockStats.count <= maxBlocks, "a message larger than the link was made for")
        if outstanding == slots.count { try completeOldest() }
        let slot = slots[(oldest + outstanding) % slots.count]
        outstanding += 1
        let dims = handOff.map { Array($0.shape.dropFirst()) } ?? []
        precondition(dims.count <= MPIStageLink.maxDims, "hand-off of rank \(dims.count + 1)")
        let words = slot.header.bindMemory(to: Int64.self, capacity: MPIStageLink.headerWords)
        words[0] = kind.rawValue
        words[1] = Int64(step)
        words[2] = Int64(labels.count)
        words[3] = Int64(blockStats.count)
        words[4] = handOff == nil ? -1 : Int64(dims.count)
        for i in 0..<MPIStageLink.maxDims { words[5 + i] = i < dims.count ? Int64(dims[i]) : 0 }
        let stats = (slot.header + MPIStageLink.headerWords * 8).bindMemory(to: Float.self, capacity: blockStats.count * 3)
        for (i, s) in blockStats.enumerated() {
            stats[3 * i] = s.predLoss
            stats[3 * i + 1] = s.simLoss
            stats[3 * i + 2] = s.wrong.map(Float.init) ?? -1
        }
        let labelBytes = slot.header + MPIStageLink.headerWords * 8 + blockStats.count * 12
        if labels.count > 0 { labelBytes.copyMemory(from: labels.baseAddress!, byteCount: labels.count * 4) }
        let size = Int32(MPIStageLink.headerWords * 8 + blockStats.count * 12 + labels.count * 4)
        let next = Int32(stage + 1)
        guard MPI_Isend(slot.header, size, lw_mpi_byte(), next, MPIStageLink.headerTag, comm, slot.requests) == MPI_SUCCESS else {
            throw TrainingError.stages("stage \(stage + 1): sending a header to stage \(stage + 2) failed")
        }
        if let handOff {
            guard handOff.rowCount == labels.count, handOff.byteCount < Int(Int32.max) else {
                throw TrainingError.stages("stage \(stage + 1): a hand-off of \(handOff.shape) does not fit one message for \(labels.count) labels")
            }
            guard MPI_Isend(handOff.pointer, Int32(handOff.byteCount), lw_mpi_byte(), next, MPIStageLink.handOffTag, comm,
                            slot.requests + 1) == MPI_SUCCESS else {
                throw TrainingError.stages("stage \(stage + 1): sending a hand-off to stage \(stage + 2) failed")
            }
        } else {
            slot.requests[1] = lw_mpi_request_null()
        }
        slot.handOff = handOff
        slot.active = true
    }

    func receive(layer: Int, ledger: Ledger) throws -> StageMessage {
        precondition(stage > 0, "the first stage receives nothing")
        let previous = Int32(stage - 1)
        var status = MPI_Status()
        guard MPI_Recv(receiveHeader, Int32(headerCapacity), lw_mpi_byte(), previous, MPIStageLink.headerTag, comm, &status) == MPI_SUCCESS else {
            throw TrainingError.stages("stage \(stage + 1): receiving from stage \(stage) failed")
        }
        var received: Int32 = 0
        MPI_Get_count(&status, lw_mpi_byte(), &received)
        let words = receiveHeader.bindMemory(to: Int64.self, capacity: MPIStageLink.headerWords)
        let count = Int(words[2]), statCount = Int(words[3]), rank = Int(words[4])
        guard received >= Int32(MPIStageLink.headerWords * 8), let kind = StageMessageKind(rawValue: words[0]),
              (0...maxBatch).contains(count), (0...maxBlocks).contains(statCount), (-1...MPIStageLink.maxDims).contains(rank),
              Int(received) == MPIStageLink.headerWords * 8 + statCount * 12 + count * 4 else {
            throw TrainingError.stages("stage \(stage + 1): stage \(stage) sent a header this stage cannot read (\(received) bytes); are both running the same layerwise?")
        }
        let stats = (receiveHeader + MPIStageLink.headerWords * 8).bindMemory(to: Float.self, capacity: statCount * 3)
        var blockStats: [BlockStepStats] = []
        blockStats.reserveCapacity(statCount)
        for i in 0..<statCount {
            let wrong = stats[3 * i + 2]
            blockStats.append(BlockStepStats(predLoss: stats[3 * i], simLoss: stats[3 * i + 1], wrong: wrong < 0 ? nil : Int(wrong)))
        }
        if count > 0 {
            receiveLabels.update(from: (receiveHeader + MPIStageLink.headerWords * 8 + statCount * 12).bindMemory(to: Int32.self, capacity: count),
                                 count: count)
        }
        var handOff: Tensor?
        if rank >= 0 {
            let shape = [count] + (0..<rank).map { Int(words[5 + $0]) }
            guard shape.dropFirst().allSatisfy({ $0 > 0 && $0 < 1 << 24 }) else {
                throw TrainingError.stages("stage \(stage + 1): stage \(stage) announced a hand-off of shape \(shape)")
            }
            let tensor = Tensor(shape, .input, layer: layer, label: "received hand-off", ledger: ledger, zeroed: false)
            var tensorStatus = MPI_Status()
            guard MPI_Recv(tensor.pointer, Int32(tensor.byteCount), lw_mpi_byte(), previous, MPIStageLink.handOffTag, comm, &tensorStatus) == MPI_SUCCESS else {
                throw TrainingError.stages("stage \(stage + 1): receiving a hand-off from stage \(stage) failed")
            }
            var got: Int32 = 0
            MPI_Get_count(&tensorStatus, lw_mpi_byte(), &got)
            guard Int(got) == tensor.byteCount else {
                throw TrainingError.stages("stage \(stage + 1): stage \(stage) sent \(got) bytes of hand-off, \(tensor.byteCount) announced")
            }
            handOff = tensor
        }
        return StageMessage(kind: kind, step: Int(words[1]), count: count, labels: UnsafeBufferPointer(start: receiveLabels, count: count),
                            blockStats: blockStats, handOff: handOff)
    }

    private func completeOldest() throws {
        try complete(slots[oldest])
        oldest = (oldest + 1) % slots.count
        outstanding -= 1
    }

    func settle() throws {
        while outstanding > inFlight { try completeOldest() }
    }

    func drain() throws {
        while outstanding > 0 { try completeOldest() }
    }

    func barrier() throws {
        guard MPI_Barrier(comm) == MPI_SUCCESS else { throw TrainingError.stages("stage \(stage + 1): MPI_Barrier failed") }
    }

    func maximum(_ value: Double) throws -> Double {
        var input = value, output = 0.0
        guard MPI_Allreduce(&input, &output, 1, lw_mpi_double(), lw_mpi_max(), comm) == MPI_SUCCESS else {
            throw TrainingError.stages("stage \(stage + 1): MPI_Allreduce failed")
        }
        return output
    }
}
#endif
