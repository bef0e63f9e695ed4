import Foundation
import Layers
import MemoryLedger
import Shards
import Tensors

/// `train --schedule greedy --cache-handoffs DIR`: the frozen prefix's output for every training
/// record, written once as a shard dataset when the round that reads it begins, and read back by
/// that round through a `HandOffLoader` instead of running the prefix every step.
///
/// Round k's cache (k >= 1, 0-based) is `DIR/round-<k+1>`: the output of blocks 0..<k run
/// forward as `Network.frozenForward` runs them (BatchNorm running statistics, no dropout; h
/// before dropout, pooled), computed a batch at a time in the training split's storage order,
/// one record per zstd frame, with the labels. Its manifest's `handOff` entry names the round,
/// the model, the run, digests of the run's configuration and of the frozen prefix's tensors,
/// the record shape, the precision and the source split's fingerprint and block structure;
/// a cache that disagrees with the round that would read it is refused or rebuilt (`open`).
/// Writing goes through `DatasetWriter`: shards in a staging folder, each fsynced and renamed,
/// the manifest last and atomically; a kill leaves no cache that looks valid.
enum HandOffCache {
    /// The cache folder of round `round` (0-based) under `root`: `root/round-<round+1>`.
    static func directory(_ root: String, round: Int) -> String { root + "/round-\(round + 1)" }

    /// SHA-256 (first 128 bits) over the names, shapes and bytes of the tensors of blocks
    /// 0..<k: what the prefix computes with.
    static func weightsDigest(_ network: Network, through k: Int) -> String {
        var h = SHA256()
        let prefixes = (0..<k).map { "blocks.\($0)." }
        for (name, t) in Checkpoint.namedTensors(network) where prefixes.contains(where: { name.hasPrefix($0) }) {
            h.update(Array("\(name) \(t.shape)\n".utf8))
            h.update(UnsafeRawBufferPointer(start: t.pointer, count: t.byteCount))
        }
        return String(h.finalizeHex().prefix(32))
    }

    /// SHA-256 (first 128 bits) of what a resumed run must repeat of the configuration.
    static func configDigest(_ config: TrainingConfig) -> String {
        var h = SHA256()
        h.update(Array(config.resumeKey.utf8))
        return String(h.finalizeHex().prefix(32))
    }

    /// The `handOff` entry round `round`'s cache must carry.
    static func expected(network: Network, round k: Int, config: TrainingConfig, source: RecordBlockSource) -> HandOffCacheInfo {
        HandOffCacheInfo(round: k + 1, model: network.spec.description, run: config.run, configDigest: configDigest(config),
                         weightsDigest: weightsDigest(network, through: k), shape: network.handOffShape(ofBlock: k - 1),
                         precision: config.cachePrecision ?? .fp32, sourceFingerprint: source.fingerprint,
                         sourceBlockRecords: (0..<source.blockCount).map { source.recordCount(ofBlock: $0) })
    }

    /// Why `found` cannot serve where `expected` is needed, as a sentence (nil: it can).
    static func mismatch(_ found: HandOffCacheInfo, _ expected: HandOffCacheInfo) -> String? {
        if found.round != expected.round { return "it holds the hand-offs into round \(found.round), this is round \(expected.round)" }
        if found.sourceFingerprint != expected.sourceFingerprint || found.sourceBlockRecords != expected.sourceBlockRecords {
            return "it was made from other training data (fingerprint \(found.sourceFingerprint), this run's is \(expected.sourceFingerprint))"
        }
        if found.shape != expected.shape { return "its records are \(found.shapeText), round \(expected.round) reads \(expected.shapeText)" }
        if found.precision != expected.precision { return "it is \(found.precision.rawValue), this run asks for \(expected.precision.rawValue) (--cache-precision)" }
        if found.model != expected.model { return "it was made for model \(found.model), this run trains \(expected.model)" }
        if found.configDigest != expected.configDigest { return "it was made by another run (\(found.run)) or another configuration" }
        if found.weightsDigest != expected.weightsDigest { return "it was made from other frozen weights than this run's blocks 0..<\(expected.round - 1)" }
        return nil
    }

    /// What `open` did.
    enum Outcome { case reused, built(seconds: Double, bytes: Int, reason: String) }

    /// Opens round `k`'s cache under `root`, building it first when it is missing, half-written,
    /// or stale (the same run's, made from other weights). A cache of another run or another
    /// configuration, or a folder that is not a cache, is refused: nothing of someone else's is
    /// deleted.
    static func open(root: String, round k: Int, network: Network, config: TrainingConfig, source: RecordBlockSource,
                     layout: ImageLayout, ledger: Ledger, killAfterRecords: Int? = nil) throws -> (HandOffLoader, Outcome) {
        let dir = directory(root, round: k)
        let want = expected(network: network, round: k, config: config, source: source)
        var reason = "none was there"
        let fm = FileManager.default
        if fm.fileExists(atPath: dir + "/" + DatasetManifest.fileName) {
            let manifest: DatasetManifest
            do { manifest = try DatasetManifest.load(directory: dir) } catch {
                throw TrainingError.data("--cache-handoffs: \(dir) cannot be read (\(error)); remove it and resume to rebuild the cache")
            }
            guard let found = manifest.handOff else {
                throw TrainingError.data("--cache-handoffs: \(dir) is a dataset, not a hand-off cache; give --cache-handoffs a folder of its own")
            }
            if found.configDigest != want.configDigest || found.run != want.run {
                throw TrainingError.data("--cache-handoffs: \(dir) was written by another run (\(found.run)) or with another configuration; give this run a folder of its own")
            }
            if let problem = mismatch(found, want) {
                reason = "the one there does not fit: \(problem)"
            } else {
                do {
                    let loader = try HandOffLoader(directory: dir, batchSize: config.batchSize, seed: config.seed, ledger: ledger)
                    return (loader, .reused)
                } catch {
                    reason = "the one there cannot be opened: \(error)"
                }
            }
        } else if fm.fileExists(atPath: dir) {
            let names = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            guard names.allSatisfy({ $0.hasPrefix(".incoming-") || $0.hasSuffix(".\(ShardFormat.fileExtension)") }) else {
                throw TrainingError.data("--cache-handoffs: \(dir) exists and is not a hand-off cache; give --cache-handoffs a folder of its own")
            }
            reason = "an interrupted write left no manifest"
        }
        try? fm.removeItem(atPath: dir)
        let started = MonotonicClock.now()
        let bytes = try write(to: dir, info: want, network: network, round: k, config: config, source: source, layout: layout,
                              ledger: ledger, killAfterRecords: killAfterRecords)
        let loader = try HandOffLoader(directory: dir, batchSize: config.batchSize, seed: config.seed, ledger: ledger)
        return (loader, .built(seconds: MonotonicClock.now() - started, bytes: bytes, reason: reason))
    }

    /// Test hook: the write stops dead after this many records, as a kill would stop it.
    struct Interrupted: Error {}

    /// Writes round k's cache into `dir` and returns its bytes on disk. Memory: one batch of
    /// images (the loader, storage order, no augmentation), the prefix's working set on it
    /// (micro-batches of `network.chunkSize`), one batch of hand-offs and one batch of records;
    /// all booked.
    static func write(to dir: String, info: HandOffCacheInfo, network: Network, round k: Int, config: TrainingConfig,
                      source: RecordBlockSource, layout: ImageLayout, ledger: Ledger, killAfterRecords: Int?) throws -> Int {
        let schema = HandOffCacheInfo.schema(shape: info.shape, precision: info.precision, classCount: source.schema.classCount)
        let recordSize = schema.recordSize
        let n = info.valueCount
        let records = source.recordCount
        let recordsPerShard = min(records, max(1, (1 << 30) / recordSize))
        let options = ShardWriterOptions(blockBytes: recordSize, level: 1, threads: 1)
        let writer = try DatasetWriter(directory: dir, split: "train", options: options, ledger: ledger)
        var committed = false
        var killed = false  // a kill leaves its staging folder behind, as a real one would
        defer { if !committed && !killed { writer.abort() } }
        try writer.start(schema: schema, totalRecords: records, recordsPerShard: recordsPerShard)
        let loaderConfig = LoaderConfig(batchSize: config.batchSize, shuffle: false, seed: config.seed, threads: config.loaderThreads,
                                        augment: nil, dropLast: false, mean: config.mean, std: config.std)
        let loader = try BatchLoader(source: source, config: loaderConfig, ledger: ledger)
        let staging = TrackedBuffer<UInt8>(count: config.batchSize * recordSize, category: .loader, layer: nil,
                                           label: "handoffCache.records", ledger: ledger)
        var written = 0
        while let batch = try loader.nextBatch() {
            ledger.enter(.forward, layer: k - 1, label: "handoff cache")
            let images = Tensor(storage: batch.images, shape: [batch.count, batch.channels, batch.height, batch.width]).rows(0..<batch.count)
            do {
                let out = network.frozenForward(images, through: k)
                let raw = UnsafeMutableRawPointer(staging.pointer)
                for i in 0..<batch.count {
                    let row = out.pointer + i * n
                    let record = raw + i * recordSize
                    switch info.precision {
                    case .fp32:
                        record.copyMemory(from: row, byteCount: 4 * n)
                    case .bf16:
                        for j in 0..<n { record.storeBytes(of: ElementwiseKernels.bf16Nearest(row[j]).littleEndian, toByteOffset: 2 * j, as: UInt16.self) }
                    }
                    record.storeBytes(of: batch.labels.pointer[i].littleEndian, toByteOffset: recordSize - 4, as: Int32.self)
                }
            }
            ledger.enter(.idle)
            if let stop = killAfterRecords, written + batch.count > stop {
                killed = true
                throw Interrupted()
            }
            try writer.append(UnsafeRawBufferPointer(start: staging.pointer, count: batch.count * recordSize))
            written += batch.count
        }
        let parameters = WriterParameters(blockBytes: recordSize, recordsPerBlock: 1, level: options.level, recordsPerShard: recordsPerShard,
                                          shuffleSeed: nil, shuffleMethod: "none", zstdVersion: Zstd.versionString,
                                          tool: "layerwise train --cache-handoffs")
        let entry = try writer.commit(parameters: parameters,
                                      source: SourceProvenance(format: "handoff-cache", files: [],
                                                               options: ["run": config.run, "round": String(k + 1)]),
                                      handOff: info)
        committed = true
        return entry.shards.reduce(0) { $0 + $1.bytes }
    }

    /// Bytes on disk of a cache folder's shards (0 when there is none).
    static func diskBytes(_ dir: String) -> Int {
        (try? DatasetManifest.load(directory: dir))?.splits.values.reduce(0) { $0 + $1.shards.reduce(0) { $0 + $1.bytes } } ?? 0
    }
}
