import Foundation
import XCTest

/// A fresh folder under the system's temporary directory, removed by the test's teardown.
func makeTemporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("layerwise-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// A small MNIST-style IDX pair the tests write themselves: `count` images of `side` x `side`
/// uint8 pixels with a pattern that differs per record, and labels `i % classes`.
struct IDXPair {
    var count = 60
    var side = 6
    var classes = 5

    var recordSize: Int { side * side + 4 }  // uint8 image, int32 label, as the converter stores them

    func pixels(ofRecord i: Int) -> [UInt8] {
        (0..<side * side).map { UInt8(truncatingIfNeeded: i &* 37 &+ $0 &* 11) }
    }

    func label(ofRecord i: Int) -> Int { i % classes }

    var imagesFile: [UInt8] {
        var bytes = bigEndian(0x0000_0803) + bigEndian(UInt32(count)) + bigEndian(UInt32(side)) + bigEndian(UInt32(side))
        for i in 0..<count { bytes += pixels(ofRecord: i) }
        return bytes
    }

    var labelsFile: [UInt8] {
        bigEndian(0x0000_0801) + bigEndian(UInt32(count)) + (0..<count).map { UInt8(label(ofRecord: $0)) }
    }

    /// Writes `images.idx` and `labels.idx` (or the given names) into `folder`.
    @discardableResult
    func write(to folder: URL, images: String = "images.idx", labels: String = "labels.idx") throws -> (images: URL, labels: URL) {
        let imagesURL = folder.appendingPathComponent(images), labelsURL = folder.appendingPathComponent(labels)
        try Data(imagesFile).write(to: imagesURL)
        try Data(labelsFile).write(to: labelsURL)
        return (imagesURL, labelsURL)
    }

    private func bigEndian(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
}

/// The block index of a .zshard file, read from its 32-byte trailer (little-endian
/// {u64 index offset, u32 blocks, ...}) and the 24-byte entries after the index frame's
/// 8-byte prefix. Only what the corruption tests need: where each block's frame lies.
struct ShardBlockIndex {
    struct Entry { var offset: Int; var compressedSize: Int }
    var entries: [Entry]

    init(file: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: file))
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func u32(_ at: Int) -> Int { (0..<4).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        let trailer = bytes.count - 32
        let indexOffset = u64(trailer), count = u32(trailer + 8)
        entries = (0..<count).map { i in
            let e = indexOffset + 8 + 24 * i
            return Entry(offset: u64(e), compressedSize: u32(e + 8))
        }
    }
}

/// The first `.zshard` file in `folder` whose name starts with `split`.
func shardFile(in folder: URL, split: String) throws -> URL {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
    guard let name = names.first(where: { $0.hasPrefix(split + "-") && $0.hasSuffix(".zshard") }) else {
        throw CLITestError.missingExecutable("no \(split) shard in \(folder.path): \(names)")
    }
    return folder.appendingPathComponent(name)
}

/// Records printed by `shards cat --hex` ("#3  label 2  0a 0b ...") or by
/// `tools/read_zshard.py` ("#3  label 2  image 0a 0b ..."), as (label, image bytes) pairs;
/// `imageBytes` cuts `cat`'s whole-record hex down to the image field that comes first.
func parseRecordLines(_ text: String, imageBytes: Int) -> [(label: Int, image: [UInt8])] {
    text.split(separator: "\n").compactMap { line -> (Int, [UInt8])? in
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 3, words[0].hasPrefix("#"), words[1] == "label", let label = Int(words[2]) else { return nil }
        let hex = words.dropFirst(3).filter { $0 != "image" }
        let bytes = hex.compactMap { UInt8($0, radix: 16) }
        return (label, Array(bytes.prefix(imageBytes)))
    }
}

/// A 12x12, 5-class IDX pair of 3,000 images converted by the CLI into train and test splits of a
/// dataset in `folder`/data; returns the dataset's path.
func convertedIDXDataset(_ layerwise: URL, in folder: URL, pair: IDXPair = IDXPair(count: 3000, side: 12, classes: 5),
                         file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let idx = try pair.write(to: folder)
    let data = folder.appendingPathComponent("data").path
    for split in ["train", "test"] {
        let converted = try CommandLineTool.run(layerwise, ["shards", "convert", "idx", "--images", idx.images.path,
                                                            "--labels", idx.labels.path, "--split", split, "--out", data])
        XCTAssertEqual(converted.status, 0, converted.all, file: file, line: line)
    }
    return data
}

/// Trains the narrow vgg8b of the CLI tests (1/16 width, 2 epochs of batches of 20, one thread)
/// on `data` into `folder/run` with `extra` flags; returns its checkpoint's bytes.
func trainNarrowVGG8b(_ layerwise: URL, data: String, in folder: URL, run: String, _ extra: [String],
                      file: StaticString = #filePath, line: UInt = #line) throws -> Data {
    let out = try CommandLineTool.run(layerwise, ["train", "--data", data, "--run", folder.appendingPathComponent(run).path,
                                                  "--model", "vgg8b", "--feat-mult", "0.0625", "--num-hidden", "32", "--dim-in-decoder", "128",
                                                  "--batch-size", "20", "--epochs", "2", "--test-limit", "40",
                                                  "--threads", "1", "--quiet"] + extra, timeout: 300)
    XCTAssertEqual(out.status, 0, out.all, file: file, line: line)
    return try Data(contentsOf: folder.appendingPathComponent(run).appendingPathComponent("checkpoint.safetensors"))
}
