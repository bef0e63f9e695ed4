import MemoryLedger
import XCTest
@testable import Converters
@testable import Shards

/// Three-channel data (CIFAR binary, 3 x 32 x 32) with a different pixel distribution in each
/// channel: the converter's statistics are per channel, and a batch normalised with them has
/// mean 0 and std 1 in every channel. Real CIFAR is not available offline, so the records are
/// synthesized; what is tested is the per-channel bookkeeping, which real data would not change.
final class PerChannelStatisticsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDirectory() }
    override func tearDown() { removeDirectory(dir) }

    /// Pixel ranges per channel (red dark and narrow, green mid and wide, blue bright).
    static let ranges: [ClosedRange<Int>] = [10...60, 60...220, 175...255]

    /// `count` CIFAR-10 records (label byte, then the image channel by channel) and each
    /// channel's pixels (scaled to [0, 1]) for the expected statistics.
    static func cifarFile(count: Int, seed: UInt64) -> (file: [UInt8], channels: [[Double]]) {
        var state = seed
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        var file = [UInt8](), channels = [[Double]](repeating: [], count: 3)
        for r in 0..<count {
            file.append(UInt8(r % 10))
            for c in 0..<3 {
                let range = ranges[c]
                for _ in 0..<1024 {
                    let v = range.lowerBound + Int(next() % UInt64(range.count))
                    file.append(UInt8(v))
                    channels[c].append(Double(v) / 255)
                }
            }
        }
        return (file, channels)
    }

    func testCIFARStatisticsArePerChannelAndANormalisedBatchHasZeroMeanAndUnitStdInEachChannel() throws {
        let (file, channels) = PerChannelStatisticsTests.cifarFile(count: 40, seed: 3)
        writeBytes(file, dir + "/data_batch_1.bin")
        try convert(try CIFARInput(files: [dir + "/data_batch_1.bin"], variant: .cifar10), to: dir + "/ds", blockBytes: 8 * 3076)
        let dataset = try ShardDataset(directory: dir + "/ds")
        let statistics = try XCTUnwrap(dataset.manifest.splits["train"]?.statistics)

        // The manifest holds one mean and std per channel, each the channel's own (population std).
        XCTAssertEqual(statistics.mean.count, 3)
        XCTAssertEqual(statistics.std.count, 3)
        for c in 0..<3 {
            let mean = channels[c].reduce(0, +) / Double(channels[c].count)
            let std = (channels[c].map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(channels[c].count)).squareRoot()
            XCTAssertEqual(Double(statistics.mean[c]), mean, accuracy: 1e-4, "channel \(c) mean")
            XCTAssertEqual(Double(statistics.std[c]), std, accuracy: 1e-4, "channel \(c) std")
        }
        XCTAssertEqual(Set(statistics.mean.map { ($0 * 100).rounded() }).count, 3, "the channels' means differ: \(statistics.mean)")
        XCTAssertEqual(Set(statistics.std.map { ($0 * 100).rounded() }).count, 3, "the channels' stds differ: \(statistics.std)")

        // One epoch through the loader with those statistics and no augmentation: every channel
        // of the normalised batches has mean ~0 and std ~1. (One mean and std for all channels
        // would leave red far below 0 and blue far above.)
        let config = LoaderConfig(batchSize: 16, shuffle: true, seed: 5, threads: 1, augment: nil,
                                  mean: statistics.mean, std: statistics.std)
        let loader = try BatchLoader(source: try dataset.split("train"), config: config, ledger: Ledger())
        XCTAssertEqual(loader.normalization, statistics.normalization)
        loader.startEpoch(0)
        var sums = [Double](repeating: 0, count: 3), squares = [Double](repeating: 0, count: 3), n = 0
        while let batch = try loader.nextBatch() {
            XCTAssertEqual([batch.channels, batch.height, batch.width], [3, 32, 32])
            let plane = batch.height * batch.width
            for i in 0..<batch.count {
                for c in 0..<3 {
                    let base = i * batch.imageElements + c * plane
                    for p in 0..<plane {
                        let v = Double(batch.images.pointer[base + p])
                        sums[c] += v
                        squares[c] += v * v
                    }
                }
            }
            n += batch.count
        }
        XCTAssertEqual(n, 40)
        for c in 0..<3 {
            let count = Double(n * 1024)
            let mean = sums[c] / count
            XCTAssertEqual(mean, 0, accuracy: 1e-3, "channel \(c) mean after normalisation")
            XCTAssertEqual((squares[c] / count - mean * mean).squareRoot(), 1, accuracy: 1e-3, "channel \(c) std after normalisation")
        }
    }
}
