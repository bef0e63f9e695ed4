import DatasetTestSupport
import Foundation
import Layers
import MemoryLedger
import Shards
import Tensors
import XCTest
@testable import Training

/// `--cache-handoffs`: the cache a greedy round writes is a valid shard dataset whose records
/// are the frozen prefix's output bit for bit, in the training loader's batch order; a run that
/// reads it trains to the same bits as one that recomputes the prefix (augmentation off), also
/// when killed while the cache is written or inside a cached round; bf16 stays within its
/// rounding bound; a cache that does not belong to the round is refused or rebuilt.
final class HandOffCacheTests: XCTestCase {
    var directory = ""

    override func tearDown() {
        if !directory.isEmpty { try? FileManager.default.removeItem(atPath: directory) }
    }

    var records = 700

    func prepare(_ name: String, train: Int = 700) throws {
        try RequiredDataset.fashionMNIST.require()
        directory = FashionMNISTSlice.temporaryDirectory(name)
        records = train
        try FashionMNISTSlice.make(in: directory, train: train, test: 200)
    }

    /// mlp 2x32 (or a narrow vgg8b), greedy in rounds of 2 epochs, batch 64 (11 steps an
    /// epoch, the last of 60 records), checkpoints every 3 steps, no augmentation.
    func config(_ run: String, cache: Bool, conv: Bool = false) -> TrainingConfig {
        var c = TrainingConfig()
        c.data = directory + "/fashion-mnist"
        c.run = directory + "/" + run
        c.model.loss = .predsim
        if conv {
            c.model.kind = .vgg8b
            c.model.featMult = 1.0 / 16
            c.model.numHidden = 32
            c.model.dimInDecoder = 256
            c.epochsPerBlock = 1
            c.trainLimit = 128
            c.chunk = 24
        } else {
            c.model.numLayers = 2
            c.model.numHidden = 32
            c.epochs = 4
        }
        c.model.dropout = 0.1
        c.schedule = .greedy
        c.batchSize = 64
        c.milestones = [2]
        c.checkpointEvery = 3
        c.threads = 1
        c.augment = AugmentRecipe.none
        c.testLimit = 100
        if cache { c.cacheHandOffs = directory + "/" + run + "-cache" }
        return c
    }

    func weights(_ trainer: Trainer) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, t) in Checkpoint.namedTensors(trainer.network) { out[name] = t.array }
        return out
    }

    func assertSameWeights(_ got: [String: [Float]], _ expected: [String: [Float]], _ what: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.keys.sorted(), expected.keys.sorted(), what, file: file, line: line)
        for (name, values) in expected where got[name] != values {
            XCTFail("\(name) differs: \(what)", file: file, line: line)
        }
    }

    /// The bf16 bits nearest to `x`, ties to even, found from the two neighbours in Float64.
    static func nearestBF16(_ x: Float) -> UInt32 {
        let down = x.bitPattern & 0xFFFF_0000, up = down &+ 0x1_0000
        let dDown = abs(Double(x) - Double(Float(bitPattern: down))), dUp = abs(Double(Float(bitPattern: up)) - Double(x))
        if dDown != dUp { return dDown < dUp ? down : up }
        return (down >> 16) & 1 == 0 ? down : up
    }

    /// The cache against the frozen prefix recomputed now:
    /// - in storage order, batch by batch as the cache was written: every value bit for bit
    ///   (fp32) or the nearest bf16 (ties to even, checked from Float64);
    /// - drawn by a `HandOffLoader` against the training loader's batches (same seed, epoch 3):
    ///   the same labels in the same rows, and values bit for bit when `anyBatch` (a conv prefix
    ///   computes each image alone) or within 1e-5 of the batch's largest value (a Linear prefix: OpenBLAS sgemm
    ///   rounds a row by its place in the batch's tiles, so the recomputing run itself gives a
    ///   record other last bits in another batch).
    func compareCache(_ trainer: Trainer, round: Int, precision: HandOffCacheInfo.Precision, anyBatch: Bool,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = HandOffCache.directory(trainer.config.cacheHandOffs!, round: round)
        let cacheSplit = try ShardDataset(directory: dir).split("train")
        let decoder = try cacheSplit.makeDecoder()
        let recordSize = cacheSplit.schema.recordSize
        var record = [UInt8](repeating: 0, count: recordSize)
        let dataset = try ShardDataset(directory: trainer.config.data)
        let split = try dataset.split("train")
        let layout = try ImageLayout(schema: split.schema)
        var storageOrder = Trainer.loaderConfig(trainer.config, training: true, layout: layout)
        storageOrder.shuffle = false
        let images = try BatchLoader(source: split, config: storageOrder, ledger: Ledger())
        var index = 0, rounded = 0
        while let batch = try images.nextBatch() {
            let x = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width]).rows(0..<batch.count)
            let h = trainer.network.frozenForward(x, through: round)
            let n = h.count / batch.count
            for i in 0..<batch.count {
                _ = try record.withUnsafeMutableBytes { try decoder.decode(block: index, into: $0) }
                let label = record.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: recordSize - 4, as: Int32.self) }
                XCTAssertEqual(label, batch.labels.pointer[i], "label of record \(index)", file: file, line: line)
                for j in 0..<n {
                    let want = h.pointer[i * n + j]
                    let got: UInt32 = record.withUnsafeBytes {
                        precision == .fp32 ? $0.loadUnaligned(fromByteOffset: 4 * j, as: UInt32.self)
                                           : UInt32($0.loadUnaligned(fromByteOffset: 2 * j, as: UInt16.self)) << 16
                    }
                    let expected = precision == .fp32 ? want.bitPattern : Self.nearestBF16(want)
                    if got != expected {
                        XCTFail("record \(index) value \(j): cached \(Float(bitPattern: got)), recomputed \(want)", file: file, line: line)
                        return
                    }
                    if got != want.bitPattern { rounded += 1 }
                }
                index += 1
            }
        }
        XCTAssertEqual(index, self.records, file: file, line: line)
        if precision == .bf16 { XCTAssertGreaterThan(rounded, 0, "bf16 rounded nothing", file: file, line: line) }

        let cache = try HandOffLoader(directory: dir, batchSize: trainer.config.batchSize, seed: trainer.config.seed, ledger: Ledger())
        let shuffled = try BatchLoader(source: split, config: Trainer.loaderConfig(trainer.config, training: true, layout: layout), ledger: Ledger())
        let cursor = LoaderCursor(fingerprint: split.fingerprint, seed: trainer.config.seed, epoch: 3, recordsConsumed: 0,
                                  shuffle: true, poolBlocks: LoaderConfig().poolBlocks)
        try shuffled.resume(from: cursor)
        try cache.resume(from: cursor)
        var records = 0
        while let batch = try shuffled.nextBatch() {
            let cached = try XCTUnwrap(cache.nextBatch(), file: file, line: line)
            XCTAssertEqual(cached.count, batch.count, file: file, line: line)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: cached.labels.pointer, count: cached.count)),
                           Array(UnsafeBufferPointer(start: batch.labels.pointer, count: batch.count)), "labels", file: file, line: line)
            let x = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width]).rows(0..<batch.count)
            let h = trainer.network.frozenForward(x, through: round)
            let scale = Double((0..<h.count).map { abs(h.pointer[$0]) }.max() ?? 0)
            for i in 0..<h.count {
                let want = h.pointer[i], got = cached.values.pointer[i]
                let error = abs(Double(got) - Double(want))
                let same = precision == .bf16 ? error <= Double(abs(want)) / 256 + 1e-5 * scale
                    : anyBatch ? got.bitPattern == want.bitPattern : error <= 1e-5 * scale
                if !same {
                    XCTFail("value \(i) of the batch at \(batch.firstPosition): cached \(got), recomputed \(want)", file: file, line: line)
                    return
                }
            }
            records += batch.count
        }
        XCTAssertNil(try cache.nextBatch(), file: file, line: line)
        XCTAssertEqual(records, self.records, file: file, line: line)
    }

    func testFP32CacheVerifiesPassesZstdAndHoldsTheRecomputedHandOffsBitForBit() throws {
        try prepare("handoff-fp32")
        var lines: [String] = []
        let trainer = try Trainer(config: config("cached", cache: true), ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        try trainer.run()
        XCTAssertTrue(lines.contains { $0.hasPrefix("hand-off cache for round 2 written to") && $0.contains("700 records of fp32 32") }, "\(lines)")
        let dir = HandOffCache.directory(trainer.config.cacheHandOffs!, round: 1)
        let report = try DatasetVerifier.verify(directory: dir)
        XCTAssertTrue(report.isClean, "\(report.faults)")
        XCTAssertEqual(report.records, 700)
        let manifest = try DatasetManifest.load(directory: dir)
        let info = try XCTUnwrap(manifest.handOff)
        XCTAssertEqual(info.round, 2)
        XCTAssertEqual(info.shape, [32])
        XCTAssertEqual(info.run, trainer.config.run)
        for shard in manifest.splits["train"]!.shards {
            let (status, _) = try runProcess("/usr/bin/zstd", ["-t", "-q", dir + "/" + shard.file])
            XCTAssertEqual(status, 0, "zstd -t \(shard.file)")
        }
        try compareCache(trainer, round: 1, precision: .fp32, anyBatch: false)
        // The image loader refuses it: no normalisation or augmentation is ever applied to it.
        var asData = config("as-data", cache: false)
        asData.data = dir
        XCTAssertThrowsError(try Trainer(config: asData, ledger: Ledger(), showProgress: false, log: { _ in })) {
            XCTAssertTrue("\($0)".contains("is a hand-off cache (round 2"), "\($0)")
        }
    }

    func runEpochs(_ trainer: Trainer, until epochs: Int) throws {
        while trainer.state.cursor.epoch < epochs { _ = try trainer.runEpoch() }
    }

    /// The same narrow vgg8b run (rounds of one epoch of 128 records, chunks of 24) with and
    /// without the cache (whose records are the recomputed prefix's bit for bit in any batch), and the cached run killed while it writes a cache and inside a cached round: the
    /// same weights, bit for bit, after three rounds. (A conv prefix computes each image alone,
    /// so the prefix gives a record the same bits in any batch; a Linear prefix does not, see
    /// `compareCache`, and an mlp run from the cache differs from the recomputing one in last bits.)
    func testConvRunFromTheCacheIsBitIdenticalToTheRecomputingRunAndResumesAfterKills() throws {
        try prepare("handoff-same", train: 300)
        let reference = try Trainer(config: config("ref", cache: false, conv: true), ledger: Ledger(), showProgress: false, log: { _ in })
        try runEpochs(reference, until: 3)
        let expected = weights(reference)
        let cached = try Trainer(config: config("cached", cache: true, conv: true), ledger: Ledger(), showProgress: false, log: { _ in })
        try runEpochs(cached, until: 3)
        assertSameWeights(weights(cached), expected, "cached run")
        let root0 = directory + "/cached-cache"
        XCTAssertFalse(FileManager.default.fileExists(atPath: HandOffCache.directory(root0, round: 1)), "one cache on disk at a time")
        XCTAssertEqual(try DatasetManifest.load(directory: HandOffCache.directory(root0, round: 2)).handOff?.shape,
                       cached.network.handOffShape(ofBlock: 1))
        try compareCache(cached, round: 2, precision: .fp32, anyBatch: true)
        XCTAssertEqual(try RunFolder(path: directory + "/cached").metrics().map(\.testError),
                       try RunFolder(path: directory + "/ref").metrics().map(\.testError))

        // Killed after 128 of round 2's cache's 300 records (the checkpoint says round 2), then
        // inside round 3 after step 5 (resumed from the end of epoch 2, reading round 3's cache).
        let run = "killed"
        let first = try Trainer(config: config(run, cache: true, conv: true), ledger: Ledger(), showProgress: false, log: { _ in })
        first.killCacheAfterRecords = 128
        XCTAssertThrowsError(try runEpochs(first, until: 3)) { XCTAssertTrue($0 is HandOffCache.Interrupted, "\($0)") }
        let root = directory + "/" + run + "-cache"
        XCTAssertFalse(FileManager.default.fileExists(atPath: HandOffCache.directory(root, round: 1) + "/" + DatasetManifest.fileName),
                       "a half-written cache has no manifest")
        var lines: [String] = []
        let second = try Trainer(config: config(run, cache: true, conv: true), resume: true, ledger: Ledger(), showProgress: false,
                                 log: { lines.append($0) })
        XCTAssertEqual(second.state.round, 1)
        second.killAtGlobalStep = 5
        XCTAssertThrowsError(try runEpochs(second, until: 3)) { XCTAssertTrue($0 is Trainer.Killed, "\($0)") }
        XCTAssertTrue(lines.contains { $0.contains("round 2 written to \(HandOffCache.directory(root, round: 1)) (an interrupted write left no manifest)") }, "\(lines)")
        let third = try Trainer(config: config(run, cache: true, conv: true), resume: true, ledger: Ledger(), showProgress: false,
                                log: { lines.append($0) })
        XCTAssertEqual(third.state.globalStep, 4)
        try runEpochs(third, until: 3)
        XCTAssertTrue(lines.contains { $0.hasPrefix("round 3 reads the hand-off cache") }, "\(lines)")
        assertSameWeights(weights(third), expected, "killed while writing the cache and inside the cached round")
    }

    func testBF16CacheIsWithinTheRoundingBoundAtHalfTheBytes() throws {
        try prepare("handoff-bf16")
        var c = config("bf16", cache: true)
        c.cachePrecision = .bf16
        c.epochs = 3  // round 2 is the last: 1 + 2 epochs
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { _ in })
        try trainer.run()
        try compareCache(trainer, round: 1, precision: .bf16, anyBatch: false)
        let split = try DatasetManifest.load(directory: HandOffCache.directory(c.cacheHandOffs!, round: 1)).splits["train"]!
        XCTAssertEqual(split.shards.reduce(0) { $0 + $1.uncompressedBytes }, 700 * (2 * 32 + 4))
    }

    /// `--schedule greedy --memory-budget` is planned per round and printed first; a disk budget
    /// no cache fits makes every round run its prefix, and the plan goes into config.json.
    func testGreedyBudgetChoiceIsPrintedFirstAndFollowed() throws {
        try prepare("handoff-budget")
        var c = config("budget", cache: true)
        c.epochs = 2
        c.memoryBudget = 1 << 30
        c.diskBudget = 100_000  // a cache of 700 records of 132 bytes needs more
        var lines: [String] = []
        let trainer = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        XCTAssertTrue(lines[0].hasPrefix("schedule greedy: 2 rounds"), lines[0])
        XCTAssertTrue(lines[2].hasPrefix("greedy plan for --memory-budget 1.0 GiB, --disk-budget 97.7 KiB"), lines[2])
        XCTAssertTrue(lines[4].hasPrefix("  round 2: whole batches, runs its frozen prefix (its cache, at most"), lines[4])
        XCTAssertEqual(trainer.config.cachedRounds, [])
        XCTAssertEqual(trainer.config.roundChunks, [nil, nil])
        try trainer.run()
        XCTAssertFalse(lines.contains { $0.contains("hand-off cache for round") }, "\(lines)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: HandOffCache.directory(c.cacheHandOffs!, round: 1)))
        XCTAssertEqual(try RunFolder(path: c.run).readConfig().cachedRounds, [])

        c.run = directory + "/budget-cached"
        c.diskBudget = 1 << 20
        lines = []
        let cached = try Trainer(config: c, ledger: Ledger(), showProgress: false, log: { lines.append($0) })
        XCTAssertEqual(cached.config.cachedRounds, [1])
        try cached.run()
        XCTAssertTrue(lines.contains { $0.hasPrefix("hand-off cache for round 2 written") }, "\(lines)")
    }

    func testMismatchedCorruptedAndAugmentedCachesAreRefused() throws {
        try prepare("handoff-refused")
        var augmented = config("augmented", cache: true)
        augmented.augment = .crop
        XCTAssertThrowsError(try Trainer(config: augmented, ledger: Ledger(), showProgress: false, log: { _ in })) {
            XCTAssertTrue("\($0)".contains("--cache-handoffs needs --augment none"), "\($0)")
        }
        var noGreedy = config("simultaneous", cache: true)
        noGreedy.schedule = nil
        XCTAssertThrowsError(try noGreedy.validate()) { XCTAssertTrue("\($0)".contains("--cache-handoffs needs --schedule greedy"), "\($0)") }

        var one = config("one", cache: true)
        one.epochs = 2
        let trainer = try Trainer(config: one, ledger: Ledger(), showProgress: false, log: { _ in })
        try trainer.run()
        let dir = HandOffCache.directory(one.cacheHandOffs!, round: 1)
        let info = try XCTUnwrap(try DatasetManifest.load(directory: dir).handOff)

        // Another run pointed at the same cache folder: refused, not deleted.
        var other = config("other", cache: true)
        other.epochs = 2
        other.seed = 2
        other.cacheHandOffs = one.cacheHandOffs
        let second = try Trainer(config: other, ledger: Ledger(), showProgress: false, log: { _ in })
        XCTAssertThrowsError(try second.run()) { XCTAssertTrue("\($0)".contains("was written by another run (\(one.run))"), "\($0)") }
        XCTAssertNotNil(try DatasetManifest.load(directory: dir).handOff)

        // The round, the shape, the precision and the frozen weights are each named.
        var wrong = info
        wrong.round = 3
        XCTAssertEqual(HandOffCache.mismatch(wrong, info), "it holds the hand-offs into round 3, this is round 2")
        wrong = info
        wrong.shape = [64]
        XCTAssertEqual(HandOffCache.mismatch(wrong, info), "its records are 64, round 2 reads 32")
        wrong = info
        wrong.precision = .bf16
        XCTAssertEqual(HandOffCache.mismatch(wrong, info), "it is bf16, this run asks for fp32 (--cache-precision)")
        wrong = info
        wrong.weightsDigest = String(repeating: "0", count: 32)
        XCTAssertEqual(HandOffCache.mismatch(wrong, info), "it was made from other frozen weights than this run's blocks 0..<1")
        XCTAssertNil(HandOffCache.mismatch(info, info))

        // A flipped byte inside a record's frame: the loader names the shard and the block.
        let shard = dir + "/" + (try DatasetManifest.load(directory: dir)).splits["train"]!.shards[0].file
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: shard)))
        bytes[bytes.count / 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: shard))
        XCTAssertFalse(try DatasetVerifier.verify(directory: dir).isClean)
        let loader = try HandOffLoader(directory: dir, batchSize: 700, seed: 1, ledger: Ledger())
        XCTAssertThrowsError(try loader.nextBatch()) {
            XCTAssertTrue("\($0)".contains(shard) && "\($0)".contains("block"), "\($0)")
        }
        // A dataset that is not a cache.
        XCTAssertThrowsError(try HandOffLoader(directory: directory + "/fashion-mnist", batchSize: 64, seed: 1, ledger: Ledger())) {
            XCTAssertTrue("\($0)".contains("not a hand-off cache"), "\($0)")
        }
    }
}
