import MemoryLedger
import XCTest
@testable import Converters
@testable import Shards

final class ConvertIDXTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDirectory() }
    override func tearDown() { removeDirectory(dir) }

    /// Writes an IDX pair of `count` h x w images (gzip-compressed when asked); returns the raw records.
    @discardableResult
    func writeIDX(count: Int, h: Int = 6, w: Int = 5, classes: Int = 10, gzip: Bool = false, seed: UInt64 = 1,
                  images: String = "images.idx", labels: String = "labels.idx") throws -> [UInt8] {
        let pixels = testBytes(count * h * w, seed: seed)
        let labelBytes = testBytes(count, seed: seed + 100, range: classes)
        let imageFile = idxBytes(dims: [count, h, w], data: pixels)
        let labelFile = idxBytes(dims: [count], data: labelBytes)
        if gzip {
            try InputFile.writeGzip(imageFile, to: dir + "/" + images)
            try InputFile.writeGzip(labelFile, to: dir + "/" + labels)
        } else {
            writeBytes(imageFile, dir + "/" + images)
            writeBytes(labelFile, dir + "/" + labels)
        }
        return records(images: pixels, labels: labelBytes.map { Int32($0) }, imageBytes: h * w)
    }

    func input() throws -> IDXInput { try IDXInput(images: dir + "/images.idx", labels: dir + "/labels.idx") }

    func testPlainIDXRoundTripsInSourceOrderWithoutShuffle() throws {
        let raw = try writeIDX(count: 97)
        let report = try convert(try input(), to: dir + "/ds", shardRecords: 40)
        XCTAssertEqual(report.manifest.shards.map(\.file),
                       ["train-00000-of-00003.zshard", "train-00001-of-00003.zshard", "train-00002-of-00003.zshard"])
        XCTAssertEqual(report.manifest.shards.map(\.records), [40, 40, 17])
        XCTAssertEqual(report.manifest.writer.shuffleMethod, "none")
        let dataset = try ShardDataset(directory: dir + "/ds")
        XCTAssertEqual(dataset.schema, imageSchema(6, 5, 1, classes: 10))
        let split = try dataset.split("train")
        XCTAssertEqual(split.recordCount, 97)
        XCTAssertEqual(split.fingerprint, dataset.manifest.splits["train"]!.fingerprint)
        XCTAssertEqual(try decodeAll(split), raw)
    }

    func testGzipIDXGivesTheSameShardsAsPlain() throws {
        let raw = try writeIDX(count: 50, gzip: true, images: "images.idx.gz", labels: "labels.idx.gz")
        try writeIDX(count: 50, gzip: false)
        let gz = try convert(try IDXInput(images: dir + "/images.idx.gz", labels: dir + "/labels.idx.gz"), to: dir + "/gz")
        let plain = try convert(try input(), to: dir + "/plain")
        XCTAssertEqual(gz.manifest.shards.map(\.sha256), plain.manifest.shards.map(\.sha256))
        XCTAssertEqual(try decodeAll(try ShardDataset(directory: dir + "/gz").split("train")), raw)
    }

    func testFourDimensionalIDXKeepsChannels() throws {
        let pixels = testBytes(4 * 3 * 2 * 3, seed: 9)
        writeBytes(idxBytes(dims: [4, 3, 2, 3], data: pixels), dir + "/images.idx")
        writeBytes(idxBytes(dims: [4], data: [0, 1, 2, 1]), dir + "/labels.idx")
        let report = try convert(try input(), to: dir + "/ds")
        XCTAssertEqual(report.schema.field("image")?.shape, [3, 2, 3])
        XCTAssertEqual(report.schema.classCount, 3)
        XCTAssertEqual(try decodeAll(try ShardDataset(directory: dir + "/ds").split("train")),
                       records(images: pixels, labels: [0, 1, 2, 1], imageBytes: 18))
    }

    func testPreShuffleIsASeededPermutationIndependentOfThreadsAndStrategy() throws {
        let raw = try writeIDX(count: 300)
        let a = try convert(try input(), to: dir + "/a", seed: 42)
        let b = try convert(try input(), to: dir + "/b", threads: 2, seed: 42)
        let c = try convert(try input(), to: dir + "/c", seed: 43)
        XCTAssertEqual(a.manifest.writer.shuffleMethod, "in-memory")
        XCTAssertEqual(a.manifest.shards.map(\.sha256), b.manifest.shards.map(\.sha256), "threads must not change the bytes")
        let shuffled = try decodeAll(try ShardDataset(directory: dir + "/a").split("train"))
        let other = try decodeAll(try ShardDataset(directory: dir + "/c").split("train"))
        XCTAssertNotEqual(shuffled, raw)
        XCTAssertNotEqual(shuffled, other)
        XCTAssertEqual(sortedRecords(shuffled, recordSize: 34), sortedRecords(raw, recordSize: 34))
        XCTAssertEqual(try ShardReader(path: dir + "/a/train-00000-of-00001.zshard").header.flags & ShardFormat.flagPreShuffled,
                       ShardFormat.flagPreShuffled)
    }

    func testExternalBucketShuffleUsesBoundedMemoryAndKeepsEveryRecord() throws {
        let raw = try writeIDX(count: 400)                  // 13,600 bytes of records
        let small = try convert(try input(), to: dir + "/ext", seed: 7, memoryBudget: 3000)  // 10 buckets
        XCTAssertEqual(small.manifest.writer.shuffleMethod, "external-buckets")
        let again = try convert(try input(), to: dir + "/ext2", threads: 2, seed: 7, memoryBudget: 3000)
        XCTAssertEqual(small.manifest.shards.map(\.sha256), again.manifest.shards.map(\.sha256))
        let out = try decodeAll(try ShardDataset(directory: dir + "/ext").split("train"))
        XCTAssertNotEqual(out, raw)
        XCTAssertEqual(sortedRecords(out, recordSize: 34), sortedRecords(raw, recordSize: 34))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/ext").sorted(),
                       ["manifest.json", "train-00000-of-00001.zshard"], "scratch buckets must be gone")
        // No shuffle and over budget: streamed in source order.
        let streamed = try convert(try input(), to: dir + "/stream", memoryBudget: 3000)
        XCTAssertEqual(streamed.manifest.writer.shuffleMethod, "none")
        XCTAssertEqual(try decodeAll(try ShardDataset(directory: dir + "/stream").split("train")), raw)
    }

    func testSecondSplitIsAddedToTheSameDatasetAndExistingSplitIsProtected() throws {
        try writeIDX(count: 60)
        let train = try convert(try input(), to: dir + "/ds", split: "train")
        try writeIDX(count: 20, classes: 4, seed: 5)
        let test = try convert(try input(), to: dir + "/ds", split: "test")
        let dataset = try ShardDataset(directory: dir + "/ds")
        XCTAssertEqual(dataset.splitNames, ["test", "train"])
        XCTAssertEqual(dataset.schema.classCount, 10, "the test split inherits the dataset's class count")
        XCTAssertEqual(dataset.manifest.splits["train"], train.manifest)
        XCTAssertEqual(dataset.manifest.splits["test"], test.manifest)
        XCTAssertEqual(try dataset.split("test").recordCount, 20)
        assertShardError(try convert(try input(), to: dir + "/ds", split: "test")) {
            if case .splitExists("test", _) = $0 { return true } else { return false }
        }
        let replaced = try convert(try input(), to: dir + "/ds", split: "test", shardRecords: 7, replace: true)
        XCTAssertEqual(replaced.manifest.shards.count, 3)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/ds").filter { $0.hasPrefix("test-") }
        XCTAssertEqual(files.sorted(), replaced.manifest.shards.map(\.file), "old shards of the replaced split are removed")
        assertShardError(try ShardDataset(directory: dir + "/ds").split("valid")) {
            if case .splitNotFound("valid", ["test", "train"]) = $0 { return true } else { return false }
        }
    }

    func testNewSplitWithDifferentImageShapeIsASchemaMismatch() throws {
        try writeIDX(count: 10)
        _ = try convert(try input(), to: dir + "/ds")
        try writeIDX(count: 10, h: 7)
        assertShardError(try convert(try input(), to: dir + "/ds", split: "test")) {
            if case .schemaMismatch = $0 { return true } else { return false }
        }
        XCTAssertEqual(try ShardDataset(directory: dir + "/ds").splitNames, ["train"])
    }

    // MARK: wrong inputs

    func testBadMagicNamesTheFile() throws {
        try writeIDX(count: 5)
        var bytes = readBytes(dir + "/labels.idx")
        bytes[3] = 3  // a rank-3 file where labels belong
        writeBytes(bytes, dir + "/labels.idx")
        assertShardError(try input(), mentioning: "labels.idx") {
            if case .invalidInput(_, let problem) = $0 { return problem.contains("magic") } else { return false }
        }
    }

    /// Found by tools/fuzz.sh idx: dimensions whose product overflows Int trapped in the size check.
    func testImageDimensionsWhoseProductOverflowsAreAnErrorNamingTheFile() throws {
        for dims in [[3, 0x3f02_001d, 0x0002_3a00, 0x0003_000b], [2, 0xffff_ffff, 0xffff_ffff], [2, 0, 5], [1, 1 << 15, 1 << 14]] {
            writeBytes(idxBytes(dims: dims, data: []), dir + "/images.idx")
            writeBytes(idxBytes(dims: [dims[0]], data: [UInt8](repeating: 1, count: dims[0])), dir + "/labels.idx")
            assertShardError(try input(), mentioning: "images.idx") {
                if case .invalidInput(_, let problem) = $0 { return problem.contains("not usable") } else { return false }
            }
        }
    }

    func testCountsThatDisagreeAreAnError() throws {
        try writeIDX(count: 5)
        writeBytes(idxBytes(dims: [4], data: [1, 2, 3, 4]), dir + "/labels.idx")
        assertShardError(try input(), mentioning: "labels.idx") {
            if case .countMismatch(_, 5, _, 4) = $0 { return true } else { return false }
        }
    }

    func testTruncatedImagesPlainAndGzipAreErrorsAndLeaveNoDataset() throws {
        for gzip in [false, true] {
            let raw = try writeIDX(count: 30)
            _ = raw
            var bytes = readBytes(dir + "/images.idx")
            bytes.removeLast(100)
            if gzip { try InputFile.writeGzip(bytes, to: dir + "/images.idx") } else { writeBytes(bytes, dir + "/images.idx") }
            let target = dir + "/trunc\(gzip)"
            assertShardError(try convert(try input(), to: target), mentioning: "images.idx") {
                if case .truncatedInput(_, 16 + 30 * 30, 16 + 30 * 30 - 100) = $0 { return true } else { return false }
            }
            // Plain files fail while converting, gzip ones already when opened (their payload is
            // read through for trailing bytes): either way nothing is left.
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? [], [], "a failed conversion leaves nothing behind")
        }
        // A gzip stream cut in the middle.
        try writeIDX(count: 30, gzip: true)
        let gz = readBytes(dir + "/images.idx")
        writeBytes(Array(gz[0 ..< gz.count / 2]), dir + "/images.idx")
        assertShardError(try convert(try input(), to: dir + "/cutgz"), mentioning: "images.idx") {
            switch $0 {
            case .truncatedInput, .invalidInput: return true
            default: return false
            }
        }
    }

    /// Found by tools/fuzz.sh idx: a few bytes whose header promises one 16384 x 16384 image (256
    /// MiB) made the reader size a record buffer from the header. The payload is checked against
    /// the file when it is opened, with or without --allow-trailing, before anything is sized.
    func testAHeaderPromisingMoreThanTheFileHoldsIsRefusedWhenOpened() throws {
        writeBytes(idxBytes(dims: [1, 16384, 16384], data: [1, 2, 3, 4, 5, 6, 7, 8]), dir + "/images.idx")
        writeBytes(idxBytes(dims: [1], data: [3]), dir + "/labels.idx")
        for allowTrailing in [false, true] {
            assertShardError(try IDXInput(images: dir + "/images.idx", labels: dir + "/labels.idx", allowTrailingBytes: allowTrailing),
                             mentioning: "images.idx") {
                if case .truncatedInput(_, 16 + 16384 * 16384, 16 + 8) = $0 { return true } else { return false }
            }
        }
    }

    func testTrailingBytesAreAnErrorNamingFileAndCountUnlessAllowed() throws {
        for gzip in [false, true] {
            let raw = try writeIDX(count: 30)
            var bytes = readBytes(dir + "/images.idx")
            bytes += [1, 2, 3, 4, 5, 6, 7]
            if gzip { try InputFile.writeGzip(bytes, to: dir + "/images.idx") } else { writeBytes(bytes, dir + "/images.idx") }
            let target = dir + "/trail\(gzip)"
            assertShardError(try convert(try input(), to: target), mentioning: "images.idx has 7 bytes after its last record") {
                if case .trailingBytes(_, 7, 16 + 30 * 30) = $0 { return true } else { return false }
            }
            // Plain files are refused when opened, gzip ones at their end: either way nothing is left.
            XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? [], [], "a refused conversion leaves nothing behind")
            let allowed = try IDXInput(images: dir + "/images.idx", labels: dir + "/labels.idx", allowTrailingBytes: true)
            try convert(allowed, to: dir + "/allowed\(gzip)")
            XCTAssertEqual(try decodeAll(try ShardDataset(directory: dir + "/allowed\(gzip)").split("train")), raw,
                           "the trailing bytes are ignored, the records kept")
        }
        // Found even when only the first records are converted (plain files are checked by size).
        try writeIDX(count: 30)
        writeBytes(readBytes(dir + "/images.idx") + [0, 0], dir + "/images.idx")
        var options = ConversionOptions(directory: dir + "/first", writer: ShardWriterOptions(blockBytes: 1024, level: 3, threads: 1))
        options.take = 10
        assertShardError(try DatasetConverter.convert(try input(), options: options), mentioning: "images.idx has 2 bytes after") {
            if case .trailingBytes(_, 2, 16 + 30 * 30) = $0 { return true } else { return false }
        }
        // The same for gzip files, whose size on disk says nothing about the payload: checked
        // by decompressing past it when the input is opened.
        for (file, extra) in [("images.idx", 3), ("labels.idx", 1)] {
            try writeIDX(count: 30)
            try InputFile.writeGzip(readBytes(dir + "/" + file) + [UInt8](repeating: 5, count: extra), to: dir + "/" + file)
            try InputFile.writeGzip(readBytes(dir + "/" + (file == "images.idx" ? "labels.idx" : "images.idx")),
                                    to: dir + "/" + (file == "images.idx" ? "labels.idx" : "images.idx"))
            var options = ConversionOptions(directory: dir + "/firstgz-\(file)", writer: ShardWriterOptions(blockBytes: 1024, level: 3, threads: 1))
            options.take = 10
            let payload = file == "images.idx" ? 16 + 30 * 30 : 8 + 30
            assertShardError(try DatasetConverter.convert(try input(), options: options), mentioning: "\(file) has \(extra) byte") {
                if case .trailingBytes(_, extra, payload) = $0 { return true } else { return false }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/firstgz-\(file)/manifest.json"))
        }
        // The labels file is checked the same way.
        try writeIDX(count: 30)
        writeBytes(readBytes(dir + "/labels.idx") + [9], dir + "/labels.idx")
        assertShardError(try convert(try input(), to: dir + "/labels"), mentioning: "labels.idx has 1 byte after") {
            if case .trailingBytes(_, 1, 8 + 30) = $0 { return true } else { return false }
        }
    }

    func testLabelFarAboveTheRestWarnsNamingTheLabelAndOrdinaryLabelsDoNot() throws {
        try writeIDX(count: 40)
        XCTAssertEqual(try convert(try input(), to: dir + "/plain").warnings, [])
        var labels = readBytes(dir + "/labels.idx")
        labels[8 + 17] = 255
        writeBytes(labels, dir + "/labels.idx")
        let report = try convert(try input(), to: dir + "/stray")
        XCTAssertEqual(report.warnings.count, 1)
        XCTAssertTrue(report.warnings[0].contains("labels.idx: label 255 (1 record) far above the others (0...9)"), report.warnings[0])
        XCTAssertEqual(report.schema.classCount, 256)
    }

    func testSkipAndTakeCarveTwoPartsThatNeverOverlapAndTogetherCoverTheSource() throws {
        let raw = try writeIDX(count: 100)
        let recordSize = 6 * 5 + 4
        func carve(_ split: String, skip: Int, take: Int?, seed: UInt64?) throws {
            var options = ConversionOptions(directory: dir + "/ds", split: split,
                                            writer: ShardWriterOptions(blockBytes: 1024, level: 3, threads: 1), shuffleSeed: seed)
            options.skip = skip
            options.take = take
            try DatasetConverter.convert(try input(), options: options)
        }
        try carve("train", skip: 0, take: 63, seed: 7)  // pre-shuffled: the slice is taken before the shuffle
        try carve("validation", skip: 63, take: nil, seed: 7)
        let dataset = try ShardDataset(directory: dir + "/ds")
        let train = sortedRecords(try decodeAll(try dataset.split("train")), recordSize: recordSize)
        let validation = sortedRecords(try decodeAll(try dataset.split("validation")), recordSize: recordSize)
        XCTAssertEqual(train, sortedRecords(Array(raw[0 ..< 63 * recordSize]), recordSize: recordSize))
        XCTAssertEqual(validation, sortedRecords(Array(raw[(63 * recordSize)...]), recordSize: recordSize))
        XCTAssertTrue(Set(train).isDisjoint(with: Set(validation)), "the two parts overlap")
        XCTAssertEqual((train + validation).sorted { $0.lexicographicallyPrecedes($1) }, sortedRecords(raw, recordSize: recordSize))
        XCTAssertEqual(dataset.manifest.splits["validation"]!.source.options, ["skip": "63", "take": "37"])
        // Source order is kept without a shuffle, and a middle slice is exactly those records.
        try carve("middle", skip: 10, take: 20, seed: nil)
        XCTAssertEqual(try decodeAll(try ShardDataset(directory: dir + "/ds").split("middle")), Array(raw[10 * recordSize ..< 30 * recordSize]))
        assertShardError(try carve("empty", skip: 100, take: nil, seed: nil), mentioning: "leaves no records") {
            if case .invalidOption("skip", _) = $0 { return true } else { return false }
        }
    }

    func testStatisticsPerSplitMatchAHandComputationAndSurviveAReload() throws {
        // Two channels of 3 x 2 pixels; split "train" from seed 1, "test" from seed 2.
        func handStatistics(pixels: [UInt8], labels: [UInt8]) -> SplitStatistics {
            var mean = [Float](), std = [Float]()
            for c in 0..<2 {
                let values = stride(from: c, to: pixels.count, by: 2).map { Double(pixels[$0]) / 255 }
                let m = values.reduce(0, +) / Double(values.count)
                let variance = values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count)
                mean.append(Float(m))
                std.append(Float(variance.squareRoot()))
            }
            let counts = (0..<4).map { k in labels.filter { Int($0) == k }.count }
            return SplitStatistics(mean: mean, std: std, labelCounts: counts)
        }
        var expected: [String: SplitStatistics] = [:]
        for (split, seed, count) in [("train", UInt64(1), 50), ("test", UInt64(2), 23)] {
            let pixels = testBytes(count * 3 * 2 * 2, seed: seed)
            let labels = testBytes(count, seed: seed + 100, range: 4)
            writeBytes(idxBytes(dims: [count, 3, 2, 2], data: pixels), dir + "/\(split)-images.idx")
            writeBytes(idxBytes(dims: [count], data: labels), dir + "/\(split)-labels.idx")
            expected[split] = handStatistics(pixels: pixels, labels: labels)
            let input = try IDXInput(images: dir + "/\(split)-images.idx", labels: dir + "/\(split)-labels.idx")
            // Pre-shuffled, and through the external shuffle for the test split: the statistics
            // do not depend on the order or the strategy.
            try convert(input, to: dir + "/ds", split: split, seed: 9, memoryBudget: split == "test" ? 300 : 64 << 20, classCount: 4)
        }
        let manifest = try ShardDataset(directory: dir + "/ds").manifest
        for split in ["train", "test"] {
            let got = try XCTUnwrap(manifest.splits[split]?.statistics, split)
            XCTAssertEqual(got.labelCounts, expected[split]!.labelCounts, split)
            for c in 0..<2 {
                XCTAssertEqual(got.mean[c], expected[split]!.mean[c], accuracy: 1e-6, "\(split) channel \(c)")
                XCTAssertEqual(got.std[c], expected[split]!.std[c], accuracy: 1e-6, "\(split) channel \(c)")
            }
            // The loader's own pass over the shards gives the same numbers.
            let computed = try Normalization.compute(source: try ShardDataset(directory: dir + "/ds").split(split), ledger: Ledger())
            XCTAssertEqual(computed, got.normalization, split)
        }
        XCTAssertNotEqual(manifest.splits["train"]!.statistics, manifest.splits["test"]!.statistics)
        let info = String(describing: try DatasetInfo(directory: dir + "/ds"))
        XCTAssertTrue(info.contains("pixels    mean \(formatFixed(Double(expected["train"]!.mean[0]), 4)), \(formatFixed(Double(expected["train"]!.mean[1]), 4))"), info)
        XCTAssertTrue(info.contains("labels    0: \(expected["test"]!.labelCounts[0]), 1: "), info)
    }

    func testOldManifestWithoutStatisticsOrHintStillLoads() throws {
        try writeIDX(count: 20)
        try convert(try input(), to: dir + "/ds")
        let path = dir + "/ds/manifest.json"
        var json = try JSONSerialization.jsonObject(with: Data(readBytes(path))) as! [String: Any]
        var splits = json["splits"] as! [String: Any]
        var train = splits["train"] as! [String: Any]
        XCTAssertNotNil(train["statistics"])
        train["statistics"] = nil
        splits["train"] = train
        json["splits"] = splits
        json["augmentHint"] = nil
        writeBytes(Array(try JSONSerialization.data(withJSONObject: json)), path)
        let manifest = try DatasetManifest.load(directory: dir + "/ds")
        XCTAssertNil(manifest.splits["train"]!.statistics)
        XCTAssertNil(manifest.augmentHint)
        XCTAssertTrue(String(describing: try DatasetInfo(directory: dir + "/ds")).contains("no statistics"))
    }

    func testAugmentHintIsStoredAndKeptWhenAnotherSplitIsAdded() throws {
        try writeIDX(count: 20)
        var options = ConversionOptions(directory: dir + "/ds", split: "train", writer: ShardWriterOptions(blockBytes: 1024, level: 3, threads: 1))
        options.augmentHint = .cropFlip
        try DatasetConverter.convert(try input(), options: options)
        XCTAssertEqual(try DatasetManifest.load(directory: dir + "/ds").augmentHint, "crop,flip")
        try convert(try input(), to: dir + "/ds", split: "test")
        XCTAssertEqual(try DatasetManifest.load(directory: dir + "/ds").augmentHint, "crop,flip")
    }

    func testLabelOutOfRangeFailsAtomically() throws {
        try writeIDX(count: 40)
        _ = try convert(try input(), to: dir + "/ds", split: "train")
        let manifestBefore = readBytes(dir + "/ds/manifest.json")
        try writeIDX(count: 40, classes: 12, seed: 3)   // labels up to 11 into a 10-class dataset
        assertShardError(try convert(try input(), to: dir + "/ds", split: "test"), mentioning: "labels.idx") {
            if case .labelOutOfRange(_, _, let label, 10) = $0 { return label >= 10 } else { return false }
        }
        XCTAssertEqual(readBytes(dir + "/ds/manifest.json"), manifestBefore, "the manifest is untouched")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/ds").sorted(),
                       ["manifest.json", "train-00000-of-00001.zshard"])
        // A fresh target: no manifest.json at all.
        assertShardError(try convert(try input(), to: dir + "/fresh", classCount: 5)) {
            if case .labelOutOfRange = $0 { return true } else { return false }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/fresh/manifest.json"))
        assertShardError(try ShardDataset(directory: dir + "/fresh")) { if case .manifestMissing = $0 { return true } else { return false } }
    }

    func testInterruptedConversionLeavesNoValidDatasetAndIsCleanedUpNextTime() throws {
        try writeIDX(count: 10)
        _ = try convert(try input(), to: dir + "/ok")
        let halfShard = Array(readBytes(dir + "/ok/train-00000-of-00001.zshard").prefix(100))
        // What a killed conversion leaves: the staging folder of a process that no longer
        // exists, holding a half-written shard, and no manifest.
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let stale = dir + "/ds/.incoming-train-\(finished.processIdentifier)-123"
        try FileManager.default.createDirectory(atPath: stale, withIntermediateDirectories: true)
        writeBytes(halfShard, stale + "/train-00000-of-00001.zshard")
        assertShardError(try ShardDataset(directory: dir + "/ds")) { if case .manifestMissing = $0 { return true } else { return false } }
        _ = try convert(try input(), to: dir + "/ds")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/ds").sorted(),
                       ["manifest.json", "train-00000-of-00001.zshard"], "the abandoned staging folder is removed")
    }

    func testBadOptionsAreRejected() throws {
        try writeIDX(count: 5)
        assertShardError(try convert(try input(), to: dir + "/x", split: "bad name")) {
            if case .invalidOption("split", _) = $0 { return true } else { return false }
        }
        assertShardError(try convert(try input(), to: dir + "/y", threads: 0)) {
            if case .invalidOption("threads", _) = $0 { return true } else { return false }
        }
    }
}
