import DatasetTestSupport
import Foundation
import XCTest
@testable import Converters
@testable import Shards

/// A real slice of Fashion-MNIST: the first 2000 training records, cut from the system's .gz
/// files into a smaller .gz IDX pair, converted and read back byte for byte.
final class ConvertFashionMNISTTests: XCTestCase {
    static let root = RequiredDataset.fashionMNIST.directory
    let count = 2000
    var dir = ""
    var pixels: [UInt8] = []
    var labels: [UInt8] = []

    override func setUpWithError() throws {
        try RequiredDataset.fashionMNIST.require()
        dir = makeTempDirectory()
        let images = try InputFile(path: Self.root + "/train-images-idx3-ubyte.gz")
        let header = try images.readExactly(16, expectedTotal: 16)
        XCTAssertEqual(Array(header[0 ..< 4]), [0, 0, 8, 3])
        pixels = try images.readExactly(count * 784, expectedTotal: 16 + count * 784)
        let labelFile = try InputFile(path: Self.root + "/train-labels-idx1-ubyte.gz")
        _ = try labelFile.readExactly(8, expectedTotal: 8)
        labels = try labelFile.readExactly(count, expectedTotal: 8 + count)
        try InputFile.writeGzip(idxBytes(dims: [count, 28, 28], data: pixels), to: dir + "/images.gz")
        try InputFile.writeGzip(idxBytes(dims: [count], data: labels), to: dir + "/labels.gz")
    }

    override func tearDown() { if !dir.isEmpty { removeDirectory(dir) } }

    func testFashionMNISTSliceReadsBackEqualToTheSourceBytes() throws {
        let input = try IDXInput(images: dir + "/images.gz", labels: dir + "/labels.gz")
        let report = try convert(input, to: dir + "/fm", blockBytes: 256 * 1024)
        XCTAssertEqual(report.schema, imageSchema(28, 28, 1, classes: 10))
        XCTAssertEqual(report.manifest.writer.recordsPerBlock, 332)  // 262,144 / 788
        let split = try ShardDataset(directory: dir + "/fm").split("train")
        XCTAssertEqual(split.blockCount, 7)
        let decoded = try decodeAll(split)
        XCTAssertEqual(decoded, records(images: pixels, labels: labels.map { Int32($0) }, imageBytes: 784))
        // Fashion-MNIST compresses, but not much (DESIGN.md section 10: about 1.8 at level 3).
        let ratio = Double(report.manifest.shards[0].uncompressedBytes) / Double(report.manifest.shards[0].bytes)
        XCTAssertGreaterThan(ratio, 1.3)
        XCTAssertLessThan(ratio, 3.0)
        // zstd -dc of the shard is the records, concatenated.
        let (status, out) = try runProcess("/usr/bin/zstd", ["-dc", "-q", dir + "/fm/" + report.manifest.shards[0].file])
        XCTAssertEqual(status, 0)
        XCTAssertEqual(out, decoded)
    }

    func testShuffledSliceHoldsTheSameRecordsAndAllTenClasses() throws {
        let input = try IDXInput(images: dir + "/images.gz", labels: dir + "/labels.gz")
        _ = try convert(input, to: dir + "/fm", blockBytes: 64 * 1024, threads: 2, shardRecords: 700, seed: ConversionOptions.defaultSeed)
        let split = try ShardDataset(directory: dir + "/fm").split("train")
        XCTAssertEqual(split.shards.count, 3)
        let decoded = try decodeAll(split)
        let source = records(images: pixels, labels: labels.map { Int32($0) }, imageBytes: 784)
        XCTAssertNotEqual(decoded, source)
        XCTAssertEqual(sortedRecords(decoded, recordSize: 788), sortedRecords(source, recordSize: 788))
        // The first block of a shuffled dataset already mixes classes.
        let firstBlockLabels = Set((0..<split.recordCount(ofBlock: 0)).map { decoded[$0 * 788 + 784] })
        XCTAssertEqual(firstBlockLabels.count, 10)
        XCTAssertTrue(try DatasetVerifier.verify(directory: dir + "/fm").isClean)
    }
}
