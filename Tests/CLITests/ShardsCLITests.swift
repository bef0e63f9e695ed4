import Foundation
import XCTest

/// `layerwise shards ...` run as a separate process on datasets the tests write themselves.
final class ShardsCLITests: XCTestCase {
    private let pair = IDXPair()  // 60 records of 6x6 pixels, 5 classes; 40-byte records

    /// Converts the pair into `dataset` (split `split`) with blocks of 10 records, asserting success.
    @discardableResult
    private func convert(_ folder: URL, split: String = "train", pair: IDXPair? = nil, extra: [String] = []) throws -> URL {
        let files = try (pair ?? self.pair).write(to: folder, images: "\(split)-images.idx", labels: "\(split)-labels.idx")
        let dataset = folder.appendingPathComponent("dataset")
        let result = try CommandLineTool.run(try CommandLineTool.layerwise(),
                                             ["shards", "convert", "idx", "--images", files.images.path, "--labels", files.labels.path,
                                              "--out", dataset.path, "--split", split, "--block-size", "400"] + extra)
        XCTAssertEqual(result.status, 0, result.all)
        return dataset
    }

    func testConvertThenInfoNamesEverySplitWithRecordsAndRatio() throws {
        let folder = try makeTemporaryFolder(self)
        let dataset = try convert(folder, split: "train")
        try convert(folder, split: "test", pair: IDXPair(count: 20))

        let info = try CommandLineTool.run(try CommandLineTool.layerwise(), ["shards", "info", dataset.path])
        XCTAssertEqual(info.status, 0, info.all)
        XCTAssertTrue(info.stdout.contains("split train: 60 records, 6 blocks in 1 shard"), info.stdout)
        XCTAssertTrue(info.stdout.contains("split test: 20 records, 2 blocks in 1 shard"), info.stdout)
        XCTAssertTrue(info.stdout.contains("5 classes"), info.stdout)
        XCTAssertTrue(info.stdout.contains("image    uint8[6, 6, 1]"), info.stdout)
        XCTAssertEqual(info.stdout.components(separatedBy: ", ratio ").count - 1, 2, "one compression ratio per split:\n\(info.stdout)")
    }

    func testInfoPrintsStatisticsAndTrainChecksSplitsFirstAndNamesTheHintItUses() throws {
        let folder = try makeTemporaryFolder(self)
        let dataset = try convert(folder, split: "train", extra: ["--augment-hint", "crop,flip"])
        try convert(folder, split: "test", pair: IDXPair(count: 20))
        let layerwise = try CommandLineTool.layerwise()

        let info = try CommandLineTool.run(layerwise, ["shards", "info", dataset.path])
        XCTAssertEqual(info.status, 0, info.all)
        XCTAssertTrue(info.stdout.contains("augment     crop,flip (the converter's --augment-hint"), info.stdout)
        XCTAssertEqual(info.stdout.components(separatedBy: "  pixels    mean ").count - 1, 2, "statistics for each split:\n\(info.stdout)")
        XCTAssertTrue(info.stdout.contains("  labels    0: 12, 1: 12, 2: 12, 3: 12, 4: 12"), info.stdout)
        XCTAssertTrue(info.stdout.contains("  labels    0: 4, 1: 4, 2: 4, 3: 4, 4: 4"), info.stdout)

        let run = folder.appendingPathComponent("run").path
        let small = ["--num-layers", "1", "--num-hidden", "8", "--batch-size", "20", "--epochs", "1", "--milestones", "", "--quiet"]
        let missing = try CommandLineTool.run(layerwise, ["train", "--data", dataset.path, "--run", run, "--test-split", "validation"] + small)
        XCTAssertNotEqual(missing.status, 0, missing.all)
        XCTAssertTrue(missing.stderr.contains("--test-split validation: no such split in \(dataset.path) (it has: test, train)"), missing.all)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/config.json"), "refused before the run started")
        let tooSmall = try CommandLineTool.run(layerwise, ["train", "--data", dataset.path, "--run", run, "--model", "vgg8b"] + small)
        XCTAssertNotEqual(tooSmall.status, 0, tooSmall.all)
        XCTAssertTrue(tooSmall.stderr.contains("--model vgg8b halves the image 4 times but splits train and test of \(dataset.path) hold 6x6 images (it needs at least 16x16)"), tooSmall.all)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/config.json"), "refused before the run started")

        let trained = try CommandLineTool.run(layerwise, ["train", "--data", dataset.path, "--run", run] + small)
        XCTAssertEqual(trained.status, 0, trained.all)
        let first = trained.stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(first.hasPrefix("data \(dataset.path): train 60 records, test 20 records, 6x6x1 uint8 images, 5 classes; augmentation crop,flip (the dataset's --augment-hint"), trained.stdout)
        XCTAssertTrue(first.contains("normalised with train's statistics from the manifest mean "), trained.stdout)

        let given = folder.appendingPathComponent("given").path
        let explicit = try CommandLineTool.run(layerwise, ["train", "--data", dataset.path, "--run", given, "--normalize", "0.5,0.25",
                                                           "--augment", "none", "--test-split", "none"] + small)
        XCTAssertEqual(explicit.status, 0, explicit.all)
        XCTAssertTrue(explicit.stdout.hasPrefix("data \(dataset.path): train 60 records, no test split, 6x6x1 uint8 images, 5 classes; augmentation none; normalised with mean 0.5000 std 0.2500"), explicit.stdout)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: given + "/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["mean"] as? [Double], [0.5])
        XCTAssertEqual(config?["std"] as? [Double], [0.25])
        XCTAssertEqual(config?["augment"] as? String, "none")
        let eval = try CommandLineTool.run(layerwise, ["eval", "--run", given, "--split", "test"])
        XCTAssertEqual(eval.status, 0, eval.all)
        let odd = try CommandLineTool.run(layerwise, ["train", "--data", dataset.path, "--run", given, "--normalize", "0.5"] + small)
        XCTAssertNotEqual(odd.status, 0, odd.all)
        XCTAssertTrue(odd.stderr.contains("--normalize 0.5 is not dataset, none or MEAN,STD"), odd.all)
    }

    func testVerifyExitsZeroOnAGoodDatasetAndNamesShardAndBlockAfterAByteFlip() throws {
        let folder = try makeTemporaryFolder(self)
        let dataset = try convert(folder)
        let layerwise = try CommandLineTool.layerwise()

        let good = try CommandLineTool.run(layerwise, ["shards", "verify", dataset.path])
        XCTAssertEqual(good.status, 0, good.all)
        XCTAssertTrue(good.stdout.contains("6 blocks, 60 records"), good.stdout)
        XCTAssertTrue(good.stdout.contains("all good"), good.stdout)

        // Flip one byte in the middle of block 3's zstd frame.
        let shard = try shardFile(in: dataset, split: "train")
        let block = try ShardBlockIndex(file: shard).entries[3]
        var bytes = try Data(contentsOf: shard)
        bytes[block.offset + block.compressedSize / 2] ^= 0x40
        try bytes.write(to: shard)

        let bad = try CommandLineTool.run(layerwise, ["shards", "verify", dataset.path])
        XCTAssertNotEqual(bad.status, 0, bad.all)
        let fault = bad.stdout.split(separator: "\n").first { $0.hasPrefix("FAULT:") && $0.contains("Block 3") }
        XCTAssertNotNil(fault, "a fault line names block 3:\n\(bad.all)")
        XCTAssertTrue(fault?.contains(shard.lastPathComponent) ?? false, "the fault names the shard:\n\(bad.all)")
        XCTAssertTrue(fault?.contains("offset \(block.offset)") ?? false, "the fault names the block's offset:\n\(bad.all)")
        XCTAssertTrue(bad.stdout.contains("5 blocks"), "the other blocks still check out:\n\(bad.stdout)")
    }

    func testCatPrintsExactlyTheRequestedRecords() throws {
        let folder = try makeTemporaryFolder(self)
        // Source order, so block 1 holds records 10..<20 of the IDX files.
        let dataset = try convert(folder, extra: ["--no-shuffle"])
        let cat = try CommandLineTool.run(try CommandLineTool.layerwise(),
                                          ["shards", "cat", dataset.path, "--split", "train", "--block", "1", "--range", "2..<5", "--hex"])
        XCTAssertEqual(cat.status, 0, cat.all)
        XCTAssertTrue(cat.stdout.hasPrefix("split train, shard train-00000-of-00001.zshard, block 1: 10 records, showing 2..<5"), cat.stdout)
        let records = parseRecordLines(cat.stdout, imageBytes: pair.side * pair.side)
        XCTAssertEqual(records.count, 3, cat.stdout)
        for (k, record) in records.enumerated() {
            let source = 12 + k
            XCTAssertEqual(record.label, pair.label(ofRecord: source), cat.stdout)
            XCTAssertEqual(record.image, pair.pixels(ofRecord: source), "record \(source)")
        }
        XCTAssertTrue(cat.stdout.contains("#2  label 2"), cat.stdout)
        XCTAssertFalse(cat.stdout.contains("#5 "), "nothing outside the range:\n\(cat.stdout)")

        let outside = try CommandLineTool.run(try CommandLineTool.layerwise(), ["shards", "cat", dataset.path, "--block", "6"])
        XCTAssertNotEqual(outside.status, 0)
        XCTAssertTrue(outside.stderr.contains("Block 6") && outside.stderr.contains("6 blocks"), outside.all)
    }

    // MARK: Bad inputs: exit non-zero, name the file and the problem, leave no dataset behind.

    /// Runs a conversion expected to fail and checks the message and that no manifest exists.
    private func assertConversionFails(images: String, labels: String, in folder: URL, extra: [String] = [],
                                       mentions expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dataset = folder.appendingPathComponent("dataset")
        let result = try CommandLineTool.run(try CommandLineTool.layerwise(),
                                             ["shards", "convert", "idx", "--images", images, "--labels", labels, "--out", dataset.path] + extra,
                                             in: folder)
        XCTAssertNotEqual(result.status, 0, result.all, file: file, line: line)
        for text in expected {
            XCTAssertTrue(result.stderr.contains(text), "stderr mentions \"\(text)\":\n\(result.all)", file: file, line: line)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataset.appendingPathComponent("manifest.json").path),
                       "no manifest.json after a failed conversion", file: file, line: line)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: dataset.path)) ?? []
        XCTAssertTrue(leftovers.filter { $0.hasSuffix(".zshard") }.isEmpty, "no shards left: \(leftovers)", file: file, line: line)
    }

    func testBadMagicStopsNamingTheFileAndLeavesNoManifest() throws {
        let folder = try makeTemporaryFolder(self)
        try pair.write(to: folder)
        var images = pair.imagesFile
        images[2] = 0x09  // 0x0903 is no IDX magic
        try Data(images).write(to: folder.appendingPathComponent("images.idx"))
        try assertConversionFails(images: "images.idx", labels: "labels.idx", in: folder, mentions: ["images.idx", "bad IDX magic"])
    }

    func testMissingFileStopsNamingTheFileAndLeavesNoManifest() throws {
        let folder = try makeTemporaryFolder(self)
        try pair.write(to: folder)
        try assertConversionFails(images: "images.idx", labels: "no-such-labels.idx", in: folder,
                                  mentions: ["no-such-labels.idx", "No such file"])
    }

    func testLabelOutOfRangeStopsNamingTheFileRecordAndLabel() throws {
        let folder = try makeTemporaryFolder(self)
        try pair.write(to: folder)
        // Labels are i % 5; with 3 classes, record 3 (label 3) is the first one outside.
        try assertConversionFails(images: "images.idx", labels: "labels.idx", in: folder, extra: ["--classes", "3"],
                                  mentions: ["labels.idx", "record 3 has label 3", "outside 0..<3"])
    }

    func testTruncatedImagesFileStopsNamingTheFile() throws {
        let folder = try makeTemporaryFolder(self)
        try pair.write(to: folder)
        try Data(pair.imagesFile.dropLast(100)).write(to: folder.appendingPathComponent("images.idx"))
        try assertConversionFails(images: "images.idx", labels: "labels.idx", in: folder, mentions: ["images.idx", "is truncated"])
    }

    func testCountsThatDisagreeStopNamingBothFiles() throws {
        let folder = try makeTemporaryFolder(self)
        try pair.write(to: folder)
        try Data(IDXPair(count: 50).labelsFile).write(to: folder.appendingPathComponent("labels.idx"))
        try assertConversionFails(images: "images.idx", labels: "labels.idx", in: folder, mentions: ["labels.idx", "60", "50"])
    }
}
