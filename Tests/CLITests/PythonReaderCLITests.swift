import Foundation
import XCTest

/// tools/read_zshard.py reads the same records as `layerwise shards cat`.
final class PythonReaderCLITests: XCTestCase {
    private let pair = IDXPair()
    private var script: String { CommandLineTool.packageRoot.appendingPathComponent("tools/read_zshard.py").path }

    /// The zstd backends the reader can use here; skips the test when python3 or both are missing.
    private func availableBackends() throws -> [String] {
        guard let version = try CommandLineTool.runFromPath("python3", ["--version"]), version.status == 0 else {
            throw XCTSkip("python3 is not installed, so tools/read_zshard.py cannot run")
        }
        var backends = [String]()
        if let module = try CommandLineTool.runFromPath("python3", ["-c", "import zstandard"]), module.status == 0 { backends.append("module") }
        if let cli = try CommandLineTool.runFromPath("zstd", ["--version"]), cli.status == 0 { backends.append("cli") }
        if backends.isEmpty { throw XCTSkip("neither the python zstandard module nor the zstd command-line tool is installed") }
        return backends
    }

    /// A pre-shuffled dataset of the pair with blocks of 10 records.
    private func convert(_ folder: URL) throws -> URL {
        let files = try pair.write(to: folder)
        let dataset = folder.appendingPathComponent("dataset")
        let result = try CommandLineTool.run(try CommandLineTool.layerwise(),
                                             ["shards", "convert", "idx", "--images", files.images.path, "--labels", files.labels.path,
                                              "--out", dataset.path, "--block-size", "400"])
        XCTAssertEqual(result.status, 0, result.all)
        return dataset
    }

    func testPythonReaderPrintsTheSameRecordsAsShardsCat() throws {
        let backends = try availableBackends()
        let folder = try makeTemporaryFolder(self)
        let dataset = try convert(folder)
        let cat = try CommandLineTool.run(try CommandLineTool.layerwise(),
                                          ["shards", "cat", dataset.path, "--split", "train", "--range", "0..<5", "--hex"])
        XCTAssertEqual(cat.status, 0, cat.all)
        let expected = parseRecordLines(cat.stdout, imageBytes: pair.side * pair.side)
        XCTAssertEqual(expected.count, 5, cat.stdout)

        for backend in backends {
            let python = try XCTUnwrap(CommandLineTool.runFromPath("python3", [script, dataset.path, "--split", "train", "--count", "5",
                                                                                "--backend", backend]))
            XCTAssertEqual(python.status, 0, "backend \(backend):\n\(python.all)")
            let read = parseRecordLines(python.stdout, imageBytes: pair.side * pair.side)
            XCTAssertEqual(read.count, 5, "backend \(backend):\n\(python.stdout)")
            XCTAssertEqual(read.map(\.label), expected.map(\.label), "backend \(backend)")
            XCTAssertEqual(read.map(\.image), expected.map(\.image), "backend \(backend)")
        }
    }

    func testPythonReaderVerifiesAndNamesAFlippedBlock() throws {
        let backends = try availableBackends()
        let folder = try makeTemporaryFolder(self)
        let dataset = try convert(folder)
        let good = try XCTUnwrap(CommandLineTool.runFromPath("python3", [script, dataset.path, "--verify", "--backend", backends[0]]))
        XCTAssertEqual(good.status, 0, good.all)

        let shard = try shardFile(in: dataset, split: "train")
        let block = try ShardBlockIndex(file: shard).entries[2]
        var bytes = try Data(contentsOf: shard)
        bytes[block.offset + block.compressedSize / 2] ^= 0x01
        try bytes.write(to: shard)
        let bad = try XCTUnwrap(CommandLineTool.runFromPath("python3", [script, dataset.path, "--verify", "--backend", backends[0]]))
        XCTAssertEqual(bad.status, 1, bad.all)
        XCTAssertTrue(bad.stdout.contains("\(shard.lastPathComponent): block 2 at offset \(block.offset): frame CRC32C"), bad.stdout)
    }
}
