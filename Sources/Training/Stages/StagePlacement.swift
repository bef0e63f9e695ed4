/// Which consecutive hidden blocks each stage of a pipelined run trains (`StagePlanner`
/// places them from the shape table).
public struct StagePlacement: Sendable, Equatable {
    /// Per stage, its blocks.
    public let blocks: [Range<Int>]

    /// As even as the count allows, the first stages taking one more when the blocks do not divide.
    public init(blocks: Int, stages: Int) {
        precondition(stages >= 1 && stages <= blocks, "\(stages) stages for \(blocks) blocks")
        var ranges: [Range<Int>] = []
        var start = 0
        for s in 0..<stages {
            let n = blocks / stages + (s < blocks % stages ? 1 : 0)
            ranges.append(start..<start + n)
            start += n
        }
        self.blocks = ranges
    }

    /// Stages holding these consecutive, non-empty ranges of blocks, from block 0 on.
    public init(ranges: [Range<Int>]) {
        precondition(!ranges.isEmpty && ranges[0].lowerBound == 0 && ranges.allSatisfy { !$0.isEmpty }
                     && zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }, "stages \(ranges)")
        blocks = ranges
    }

    /// Stages of `counts[s]` consecutive blocks each.
    public init(counts: [Int]) {
        var start = 0
        self.init(ranges: counts.map { n in
            defer { start += n }
            return start..<start + n
        })
    }

    /// Blocks per stage.
    public var counts: [Int] { blocks.map(\.count) }

    public var stageCount: Int { blocks.count }
}
