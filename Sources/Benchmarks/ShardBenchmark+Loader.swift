import MemoryLedger
import Shards

/// The loader part of `shards bench`: `BatchLoader` on the dataset's real shards (zstd decode,
/// frame CRC, shuffle, augmentation and normalisation all included), its peak ledger bytes next
/// to the bound computed in advance, and how far it outruns training.
extension ShardBenchmark {
    public struct LoaderResult: Sendable {
        public var threads: Int
        /// Median of the runs: records in batches per second of wall time.
        public var recordsPerSecond: Double
        /// Median of the runs: stored record bytes delivered per second, MB (10^6 bytes).
        public var megabytesPerSecond: Double
        /// The largest peak ledger bytes of the runs (each run has its own ledger).
        public var peakLedgerBytes: Int
        /// Process CPU seconds per wall second over the runs (consumer thread included).
        public var cpuUtilization: Double
    }

    public struct LoaderReport: Sendable {
        public var config: LoaderConfig
        public var results: [LoaderResult]
        /// The bound for the largest thread count measured (prefetch slots exist only with threads).
        public var bound: LoaderMemoryBound
        public var trainRecordsPerSecond: Double

        /// How many times training's consumption the slowest measured configuration delivers
        /// (the fewest threads: training needs the cores for itself).
        public var deliveryRatio: Double {
            guard let slowest = results.first, trainRecordsPerSecond > 0 else { return 0 }
            return slowest.recordsPerSecond / trainRecordsPerSecond
        }

        var lines: [String] {
            let augment = config.augment.map { "crop pad \($0.cropPadding)\($0.horizontalFlip ? " + flip" : "")" } ?? "off"
            var lines = ["loader (BatchLoader, batch \(config.batchSize), pool K = \(bound.poolBlocks), prefetch \(config.prefetchBlocks), augmentation \(augment); median of 3):"]
            for r in results {
                lines.append("  \(r.threads) thread\(r.threads == 1 ? " " : "s") \(formatFixed(r.megabytesPerSecond, 0).padded(7)) MB/s  \(formatFixed(r.recordsPerSecond / 1e3, 1).padded(7)) k records/s  peak ledger \(formatBytes(r.peakLedgerBytes))  (cores busy \(formatFixed(r.cpuUtilization, 2)))")
            }
            lines.append("  memory bound (K + prefetch) x block + tables = (\(bound.poolBlocks) + \(bound.prefetchBlocks)) x \(formatBytes(bound.blockBytes)) + \(formatBytes(bound.tableBytes)) = \(formatBytes(bound.totalBytes)) (\(bound.totalBytes) bytes); observed peak \(results.map(\.peakLedgerBytes).max() ?? 0) bytes")
            lines.append("    tables: record order \(formatBytes(bound.recordOrderBytes)), two batch buffers \(formatBytes(bound.batchBytes)), pixel table \(formatBytes(bound.pixelTableBytes))")
            if let slowest = results.first {
                var line = "  loader delivers \(formatFixed(deliveryRatio, 1))x training's consumption (\(formatGrouped(trainRecordsPerSecond)) samples/s) with \(slowest.threads) decode thread\(slowest.threads == 1 ? "" : "s")"
                if results.count > 1, let fastest = results.last {
                    line += "; \(formatFixed(fastest.recordsPerSecond / trainRecordsPerSecond, 1))x with \(fastest.threads)"
                }
                lines.append(line)
            }
            return lines
        }
    }

    /// Runs the loader three times per thread count for `minimumSeconds` each. Mean and std are
    /// computed once up front when the config lacks them, so no run repeats the statistics pass.
    static func measureLoader(_ split: ShardSplit, configuration: Configuration) throws -> LoaderReport {
        var config = configuration.loader
        if config.mean == nil || config.std == nil {
            let statistics = try Normalization.compute(source: split, ledger: Ledger(eventCapacity: 0))
            config.mean = statistics.mean
            config.std = statistics.std
        }
        var results = [LoaderResult]()
        for threads in Set(configuration.loaderThreads).sorted() {
            config.threads = threads
            var runs = [LoaderBenchmarkResult]()
            let cpuStart = cpuSeconds(), wallStart = now()
            for _ in 0..<3 {
                runs.append(try LoaderBenchmark.run(source: split, config: config, seconds: configuration.minimumSeconds))
            }
            let utilization = (cpuSeconds() - cpuStart) / (now() - wallStart)
            let median = runs.sorted { $0.recordsPerSecond < $1.recordsPerSecond }[1]
            results.append(LoaderResult(threads: threads, recordsPerSecond: median.recordsPerSecond,
                                        megabytesPerSecond: median.megabytesPerSecond,
                                        peakLedgerBytes: runs.map(\.peakLedgerBytes).max() ?? 0, cpuUtilization: utilization))
        }
        config.threads = configuration.loaderThreads.max() ?? 0
        return LoaderReport(config: config, results: results, bound: try LoaderMemoryBound(source: split, config: config),
                            trainRecordsPerSecond: configuration.trainRecordsPerSecond)
    }
}

/// 7700 as "7,700": a whole number with thousands separators.
func formatGrouped(_ value: Double) -> String {
    let digits = formatFixed(value.magnitude, 0)
    var grouped = ""
    for (i, digit) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { grouped.append(",") }
        grouped.append(digit)
    }
    return (value < 0 && digits != "0" ? "-" : "") + grouped
}
