import MemoryLedger
import Shards

/// What `LoaderBenchmark.run` measured.
public struct LoaderBenchmarkResult: Sendable, Codable, Equatable {
    /// Records delivered in batches per second of wall time.
    public var recordsPerSecond: Double
    /// Stored record bytes delivered per second, in MB (10^6 bytes).
    public var megabytesPerSecond: Double
    /// The loader's peak ledger bytes during the run (its own ledger, so nothing else counts).
    public var peakLedgerBytes: Int
    public var records: Int
    public var batches: Int
    public var seconds: Double
}

/// Loader throughput on its own: batches are taken as fast as the loader makes them, with no
/// training in between, so the figure is an upper bound on what it can feed a trainer.
public enum LoaderBenchmark {
    /// Reads epochs from `source` with `config` for about `seconds` (at least one batch) and
    /// reports throughput and peak memory. Loader construction (and the statistics pass when
    /// `config` has no mean and std) is not timed.
    public static func run(source: RecordBlockSource, config: LoaderConfig, seconds: Double) throws -> LoaderBenchmarkResult {
        let ledger = Ledger(eventCapacity: 0)
        var records = 0
        var batches = 0
        var elapsed = 0.0
        do {
            let loader = try BatchLoader(source: source, config: config, ledger: ledger)
            let start = now()
            var epoch = 0
            outer: while true {
                while let batch = try loader.nextBatch() {
                    records += batch.count
                    batches += 1
                    elapsed = now() - start
                    if elapsed >= seconds { break outer }
                }
                if batches == 0 { break }  // an empty split
                epoch += 1
                loader.startEpoch(epoch)
            }
        }
        let recordBytes = Double(records) * Double(source.schema.recordSize)
        return LoaderBenchmarkResult(recordsPerSecond: elapsed > 0 ? Double(records) / elapsed : 0,
                                     megabytesPerSecond: elapsed > 0 ? recordBytes / elapsed / 1e6 : 0,
                                     peakLedgerBytes: ledger.peak().total,
                                     records: records, batches: batches, seconds: elapsed)
    }

    private static func now() -> Double {
        BenchmarkClock.now()
    }
}
