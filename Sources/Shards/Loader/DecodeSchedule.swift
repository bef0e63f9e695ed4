/// The blocks the decoders work through, in the order the plan will ask for them: first the
/// blocks already in the pool when decoding (re)starts (all of them at an epoch's start, the
/// partially consumed ones after a resume), then the rest of the block order, skipping empty
/// blocks exactly as the plan does.
struct DecodeSchedule {
    private let prefix: [Int]
    private var prefixIndex = 0
    private let order: BlockOrder
    private var position: Int
    private let source: RecordBlockSource

    init(plan: EpochPlan, source: RecordBlockSource) {
        prefix = plan.liveBlocks
        order = plan.order
        position = plan.nextOrderPosition
        self.source = source
    }

    /// The next block to decode, or nil when the epoch needs no more.
    mutating func next() -> Int? {
        if prefixIndex < prefix.count {
            prefixIndex += 1
            return prefix[prefixIndex - 1]
        }
        while position < order.count {
            let block = order.block(at: position)
            position += 1
            if source.recordCount(ofBlock: block) > 0 { return block }
        }
        return nil
    }
}
