import Foundation
import XCTest
@testable import Shards

/// In-memory images written as a split: the records read back byte for byte in the order they
/// were added, and the manifest carries the statistics the trainer normalises with.
final class LabeledImagesTests: XCTestCase {
    func testWrittenSplitReadsBackRecordForRecordWithStatisticsAndLabelCounts() throws {
        let directory = makeTempDirectory()
        defer { removeDirectory(directory) }
        var images = LabeledImages(height: 3, width: 2, channels: 2, classCount: 3)
        let pixels = testBytes(5 * 12, seed: 7)
        let labels = [2, 0, 2, 1, 2]
        for (i, label) in labels.enumerated() { images.append(pixels: Array(pixels[i * 12 ..< (i + 1) * 12]), label: label) }
        // Blocks of two records, so the split has several blocks to read back in order.
        let entry = try images.write(to: directory, split: "train", options: ShardWriterOptions(blockBytes: 2 * 16))
        XCTAssertEqual(entry.records, 5)
        XCTAssertEqual(entry.blocks, 3)

        let dataset = try ShardDataset(directory: directory)
        XCTAssertEqual(dataset.schema, images.schema)
        XCTAssertEqual(dataset.schema.classCount, 3)
        let split = try dataset.split("train")
        let decoder = try split.makeDecoder()
        var read: [UInt8] = []
        var block = [UInt8](repeating: 0, count: split.maxBlockBytes)
        for index in 0..<split.blockCount {
            let records = try block.withUnsafeMutableBytes { try decoder.decode(block: index, into: $0) }
            read += block[0 ..< records * 16]
        }
        var expected: [UInt8] = []
        for (i, label) in labels.enumerated() {
            expected += pixels[i * 12 ..< (i + 1) * 12]
            expected += withUnsafeBytes(of: Int32(label).littleEndian) { Array($0) }
        }
        XCTAssertEqual(read, expected)

        // Per-channel statistics by hand: channel c is every second byte starting at c.
        let statistics = try XCTUnwrap(dataset.manifest.splits["train"]?.statistics)
        XCTAssertEqual(statistics.labelCounts, [1, 1, 3])
        for c in 0..<2 {
            let values = stride(from: c, to: pixels.count, by: 2).map { Double(pixels[$0]) / 255 }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            XCTAssertEqual(Double(statistics.mean[c]), mean, accuracy: 1e-6)
            XCTAssertEqual(Double(statistics.std[c]), variance.squareRoot(), accuracy: 1e-6)
        }
    }

    func testEmptyImagesAndAnExistingSplitAreRefusedAndLeaveNoDataset() throws {
        let directory = makeTempDirectory()
        defer { removeDirectory(directory) }
        var images = LabeledImages(height: 2, width: 2, classCount: 2)
        XCTAssertThrowsError(try images.write(to: directory, split: "train"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/manifest.json"))
        images.append(pixels: [1, 2, 3, 4], label: 1)
        try images.write(to: directory, split: "train")
        XCTAssertThrowsError(try images.write(to: directory, split: "train")) { error in
            guard case ShardError.splitExists = error else { return XCTFail("\(error)") }
        }
        XCTAssertNoThrow(try images.write(to: directory, split: "train", replace: true))
    }
}
