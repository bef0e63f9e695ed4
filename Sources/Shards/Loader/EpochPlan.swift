import Randomness

/// One epoch's record order, advanced one draw at a time. It is a pure function of
/// (seed, epoch, block record counts, K): it never looks at decoded bytes or threads, so the
/// order is the same for any number of decode threads, and a resumed run replays it by drawing
/// without decoding.
///
/// The scheme (DESIGN.md section 6): blocks are visited in a seeded permutation; K logical
/// slots each hold one block and walk its records in that block's own seeded permutation; each
/// draw picks one of the non-empty slots uniformly and emits its next record; a slot that runs
/// out takes the next non-empty block of the permutation at once, or leaves the pool when there
/// are no blocks left. With shuffling off there is one slot, blocks and records in storage order.
struct EpochPlan {
    /// What a draw did to its slot after emitting the record.
    enum SlotChange: Equatable {
        case none
        /// The slot ran out and now holds `block`, from its first record.
        case refilled(block: Int)
        /// The slot ran out and no blocks are left: it leaves the pool.
        case drained
    }

    /// One emitted record: `slot` held the block, `position` is the record's place in that
    /// block's record order (map it through the slot's record permutation).
    struct Draw {
        var slot: Int
        var block: Int
        var position: Int
        var change: SlotChange
    }

    let seed: UInt64
    let epoch: Int
    let shuffle: Bool
    let order: BlockOrder
    let slotCount: Int
    let totalRecords: Int
    /// Records drawn so far this epoch.
    private(set) var drawn = 0
    /// The next position of `order` that a refill will look at.
    private(set) var nextOrderPosition = 0
    private(set) var slotBlock: [Int]
    private(set) var slotRecords: [Int]
    private(set) var slotPosition: [Int]
    /// Slots that still hold records, ascending.
    private(set) var active: [Int]
    private var slotDraws: Xoshiro256
    private let source: RecordBlockSource

    init(source: RecordBlockSource, seed: UInt64, epoch: Int, shuffle: Bool, poolBlocks: Int) {
        self.source = source
        self.seed = seed
        self.epoch = epoch
        self.shuffle = shuffle
        let blocks = source.blockCount
        order = shuffle ? BlockOrder(count: blocks, key: LoaderSeeds.blockOrder(seed: seed, epoch: epoch))
                        : BlockOrder(sequential: blocks)
        slotCount = shuffle ? max(1, min(poolBlocks, blocks)) : 1
        totalRecords = source.recordCount
        slotDraws = Xoshiro256(seed: LoaderSeeds.slotDraws(seed: seed, epoch: epoch))
        slotBlock = Array(repeating: -1, count: slotCount)
        slotRecords = Array(repeating: 0, count: slotCount)
        slotPosition = Array(repeating: 0, count: slotCount)
        active = []
        active.reserveCapacity(slotCount)
        for slot in 0..<slotCount {
            guard let block = takeNextBlock() else { break }
            slotBlock[slot] = block
            slotRecords[slot] = source.recordCount(ofBlock: block)
            active.append(slot)
        }
    }

    var remaining: Int { totalRecords - drawn }

    /// Blocks the pool holds now, in slot order: what must be decoded before drawing resumes.
    var liveBlocks: [Int] { active.map { slotBlock[$0] } }

    /// The next non-empty block of the order, advancing past it.
    private mutating func takeNextBlock() -> Int? {
        while nextOrderPosition < order.count {
            let block = order.block(at: nextOrderPosition)
            nextOrderPosition += 1
            if source.recordCount(ofBlock: block) > 0 { return block }
        }
        return nil
    }

    /// Emits the next record of the epoch. Call only while `remaining > 0`.
    mutating func draw() -> Draw {
        precondition(!active.isEmpty, "draw past the end of the epoch")
        // A single live slot needs no random choice; skipping the draw keeps shuffle-off free
        // of RNG work and is part of the plan's definition, so it is the same on replay.
        let pick = active.count == 1 ? 0 : slotDraws.next(below: active.count)
        let slot = active[pick]
        let block = slotBlock[slot]
        let position = slotPosition[slot]
        slotPosition[slot] = position + 1
        drawn += 1
        var change = SlotChange.none
        if position + 1 == slotRecords[slot] {
            if let next = takeNextBlock() {
                slotBlock[slot] = next
                slotRecords[slot] = source.recordCount(ofBlock: next)
                slotPosition[slot] = 0
                change = .refilled(block: next)
            } else {
                active.remove(at: pick)
                slotBlock[slot] = -1
                change = .drained
            }
        }
        return Draw(slot: slot, block: block, position: position, change: change)
    }

    /// Advances `count` draws without emitting anything: the replay behind exact resume.
    mutating func skip(_ count: Int) {
        precondition(count <= remaining, "cannot skip past the end of the epoch")
        for _ in 0..<count { _ = draw() }
    }

    /// Writes block `block`'s record order (a permutation of 0..<records, or the identity with
    /// shuffling off) into `destination`.
    func recordOrder(ofBlock block: Int, records: Int, into destination: UnsafeMutablePointer<UInt32>) {
        for i in 0..<records { destination[i] = UInt32(truncatingIfNeeded: i) }
        guard shuffle else { return }
        var generator = Xoshiro256(seed: LoaderSeeds.recordOrder(seed: seed, epoch: epoch, block: block))
        generator.shuffle(UnsafeMutableBufferPointer(start: destination, count: records))
    }
}
