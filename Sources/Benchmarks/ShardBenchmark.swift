import Dispatch
import Foundation
import Shards

/// Decompression throughput, loader throughput and memory, and compression ratios measured on a
/// dataset's own records.
public enum ShardBenchmark {
    public struct Configuration: Sendable {
        /// The split to measure (nil: `train` if the dataset has one, else the first).
        public var split: String?
        /// Decode threads to compare with one.
        public var threads: Int
        public var levels: [Int]
        public var blockSizes: [Int]
        /// Bytes of decoded records to compress at each (level, block size).
        public var sampleBytes: Int
        /// Each decode measurement repeats full passes until this many seconds; median of 3.
        /// Each loader run lasts this long; median of 3 runs per thread count.
        public var minimumSeconds: Double
        /// The loader as the trainer makes it (pool, prefetch, batch size, augmentation); its
        /// `threads` is replaced by each of `loaderThreads`. Mean and std, when not given, are
        /// computed once before the runs.
        public var loader: LoaderConfig
        /// Decode thread counts to run the loader with; empty skips the loader.
        public var loaderThreads: [Int]
        /// Samples per second training consumes, to compare the loader with.
        public var trainRecordsPerSecond: Double

        public init(split: String? = nil, threads: Int = 2, levels: [Int] = [1, 3, 9], blockSizes: [Int] = [64 << 10, 256 << 10, 1 << 20],
                    sampleBytes: Int = 16 << 20, minimumSeconds: Double = 1,
                    loader: LoaderConfig = LoaderConfig(batchSize: 128, seed: 1, augment: .fashionMNIST),
                    loaderThreads: [Int] = [1, 2], trainRecordsPerSecond: Double = 7_700) {
            self.split = split
            self.threads = threads
            self.levels = levels
            self.blockSizes = blockSizes
            self.sampleBytes = sampleBytes
            self.minimumSeconds = minimumSeconds
            self.loader = loader
            self.loaderThreads = loaderThreads
            self.trainRecordsPerSecond = trainRecordsPerSecond
        }
    }

    public struct DecodeResult: Sendable {
        public var threads: Int
        /// Uncompressed MB (10^6 bytes) per second, frame CRC and zstd checksum included.
        public var megabytesPerSecond: Double
        public var recordsPerSecond: Double
        /// Process CPU seconds per wall second while measuring: near `threads` when the threads
        /// really ran in parallel, lower when other processes took the cores (a shared machine).
        public var cpuUtilization: Double
    }

    public struct CompressionResult: Sendable {
        public var level: Int
        public var blockBytes: Int
        public var ratio: Double
        /// Compression speed on one thread, uncompressed MB per second.
        public var megabytesPerSecond: Double
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var split: String
        public var records: Int
        public var storedRatio: Double
        public var decode: [DecodeResult]
        /// CRC32C alone over the compressed frames, one thread, MB per second of frame bytes.
        public var crcMegabytesPerSecond: Double
        public var compression: [CompressionResult]
        public var sampleBytes: Int
        /// Nil when no loader thread counts were asked for.
        public var loader: LoaderReport?

        public var description: String {
            var lines = ["split \(split): \(records) records, stored compression ratio \(formatFixed(storedRatio, 3))", "", "decode (frame CRC32C + zstd checksum, median of 3):"]
            for d in decode {
                lines.append("  \(d.threads) thread\(d.threads == 1 ? " " : "s") \(formatFixed(d.megabytesPerSecond, 0).padded(7)) MB/s  \(formatFixed(d.recordsPerSecond / 1e6, 2)) M records/s  (cores busy \(formatFixed(d.cpuUtilization, 2)))")
            }
            lines.append("  (of which frame CRC32C alone runs at \(formatFixed(crcMegabytesPerSecond, 0)) MB/s of compressed bytes)")
            if let loader {
                lines.append("")
                lines += loader.lines
            }
            lines.append("")
            lines.append("compression of \(formatBytes(sampleBytes)) of records (1 thread):")
            lines.append("  level  block      ratio   MB/s")
            for c in compression {
                lines.append("  \(String(c.level).padded(5))  \(formatBytes(c.blockBytes).padded(9))  \(formatFixed(c.ratio, 3).padded(6))  \(formatFixed(c.megabytesPerSecond, 0).padded(5))")
            }
            return lines.joined(separator: "\n")
        }
    }

    public static func run(directory: String, configuration: Configuration) throws -> Report {
        let dataset = try ShardDataset(directory: directory)
        // Training reads `train`, so that is the split to measure unless another is named.
        let defaultSplit = dataset.splitNames.contains("train") ? "train" : dataset.splitNames.first
        guard let name = configuration.split ?? defaultSplit else {
            throw ShardError.splitNotFound(split: configuration.split ?? "", available: [])
        }
        let split = try dataset.split(name)
        let stored = split.shards.reduce(0) { $0 + $1.compressedBlockBytes }
        let raw = split.shards.reduce(0) { $0 + $1.uncompressedBytes }
        var decode = [try measureDecode(split, threads: 1, seconds: configuration.minimumSeconds)]
        if configuration.threads > 1 { decode.append(try measureDecode(split, threads: configuration.threads, seconds: configuration.minimumSeconds)) }
        let crc = measureCRC(split, seconds: configuration.minimumSeconds / 3)
        let sample = try decodedSample(split, bytes: configuration.sampleBytes)
        var compression = [CompressionResult]()
        for blockBytes in configuration.blockSizes {
            for level in configuration.levels {
                compression.append(try measureCompression(sample, recordSize: split.schema.recordSize, blockBytes: blockBytes, level: level))
            }
        }
        let loader = configuration.loaderThreads.isEmpty ? nil : try measureLoader(split, configuration: configuration)
        return Report(split: name, records: split.recordCount, storedRatio: stored > 0 ? Double(raw) / Double(stored) : 0,
                      decode: decode, crcMegabytesPerSecond: crc, compression: compression, sampleBytes: sample.count,
                      loader: loader)
    }

    static func now() -> Double {
        BenchmarkClock.now()
    }

    /// User + system CPU time of the whole process.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
    }

    /// Decodes every block of `split` repeatedly on `threads` threads (thread w takes blocks
    /// w, w + threads, ...), each with its own decoder and buffer.
    static func measureDecode(_ split: ShardSplit, threads: Int, seconds: Double) throws -> DecodeResult {
        let decoders = try (0..<threads).map { _ in try split.makeDecoder() }
        let buffers = (0..<threads).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: split.maxBlockBytes, alignment: 64) }
        defer { buffers.forEach { $0.deallocate() } }
        let failures = UnsafeMutableBufferPointer<ShardError?>.allocate(capacity: threads)
        failures.initialize(repeating: nil)
        defer { _ = failures.deinitialize(); failures.deallocate() }
        let passBytes = Double(split.recordCount * split.schema.recordSize)
        var rates = [Double]()
        let cpuStart = cpuSeconds(), wallStart = now()
        for _ in 0..<3 {
            var passes = 0
            let start = now()
            repeat {
                DispatchQueue.concurrentPerform(iterations: threads) { w in
                    var b = w
                    while b < split.blockCount {
                        do { _ = try decoders[w].decode(block: b, into: buffers[w]) } catch { failures[w] = error as? ShardError }
                        b += threads
                    }
                }
                if let failure = failures.compactMap({ $0 }).first { throw failure }
                passes += 1
            } while now() - start < seconds / 3
            rates.append(Double(passes) * passBytes / (now() - start))
        }
        let utilization = (cpuSeconds() - cpuStart) / (now() - wallStart)
        let median = rates.sorted()[1]
        return DecodeResult(threads: threads, megabytesPerSecond: median / 1e6,
                            recordsPerSecond: median / Double(split.schema.recordSize), cpuUtilization: utilization)
    }

    /// CRC32C over every compressed frame, repeated for `seconds`.
    static func measureCRC(_ split: ShardSplit, seconds: Double) -> Double {
        var bytes = 0
        var sink: UInt32 = 0
        let start = now()
        repeat {
            for shard in split.shards {
                for b in 0..<shard.blocks.count {
                    let frame = shard.frame(b)
                    sink ^= CRC32C.checksum(frame)
                    bytes += frame.count
                }
            }
        } while now() - start < seconds
        if sink == 0x1234_5678 { print("") }  // keep the checksums observable so they are not optimised away
        return Double(bytes) / (now() - start) / 1e6
    }

    /// The first `bytes` (whole blocks) of decoded records.
    static func decodedSample(_ split: ShardSplit, bytes: Int) throws -> [UInt8] {
        let decoder = try split.makeDecoder()
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: split.maxBlockBytes)
        var b = 0
        while out.count < bytes && b < split.blockCount {
            let n = try buffer.withUnsafeMutableBytes { try decoder.decode(block: b, into: $0) }
            out += buffer[0 ..< n * split.schema.recordSize]
            b += 1
        }
        return Array(out.prefix(max(split.schema.recordSize, bytes / split.schema.recordSize * split.schema.recordSize)))
    }

    static func measureCompression(_ sample: [UInt8], recordSize: Int, blockBytes: Int, level: Int) throws -> CompressionResult {
        let block = max(1, blockBytes / recordSize) * recordSize
        let compressor: Zstd.Compressor
        do { compressor = try Zstd.Compressor(level: level) } catch let f as Zstd.Failure {
            throw ShardError.invalidOption(name: "level", problem: "zstd rejected \(level) (\(f.message))")
        }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: Zstd.compressBound(block), alignment: 64)
        defer { out.deallocate() }
        var compressed = 0
        let start = now()
        try sample.withUnsafeBytes { all in
            var offset = 0
            while offset < all.count {
                let end = min(offset + block, all.count)
                do { compressed += try compressor.compress(UnsafeRawBufferPointer(rebasing: all[offset ..< end]), into: out) } catch let f as Zstd.Failure {
                    throw ShardError.compressionFailed(file: "benchmark sample", block: offset / block, reason: f.message)
                }
                offset = end
            }
        }
        let elapsed = max(now() - start, 1e-9)
        return CompressionResult(level: level, blockBytes: block, ratio: Double(sample.count) / Double(max(1, compressed)),
                                 megabytesPerSecond: Double(sample.count) / elapsed / 1e6)
    }
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
