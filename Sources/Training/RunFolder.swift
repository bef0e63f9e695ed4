import FileSystem
import Foundation

/// A run folder: `config.json`, `metrics.jsonl` (one JSON object per epoch) and
/// `checkpoint.safetensors` (weights, optimizer moments, BN statistics and trainer state).
public struct RunFolder: Sendable {
    /// The folder.
    public let path: String

    /// Opens the folder at `path`, creating it if needed.
    public init(path: String) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.runFolder(path: path, problem: "cannot be created (\(error.localizedDescription))")
        }
    }

    /// The run's configuration, written when the run starts.
    public var configPath: String { path + "/config.json" }
    /// One JSON object per finished epoch (``EpochMetrics``).
    public var metricsPath: String { path + "/metrics.jsonl" }
    /// The latest checkpoint (safetensors), replaced atomically.
    public var checkpointPath: String { path + "/checkpoint.safetensors" }

    /// Writes config.json and clears metrics of an earlier run in the same folder.
    func start(config: TrainingConfig) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(config), to: configPath)
        try? FileManager.default.removeItem(atPath: metricsPath)
        try? FileManager.default.removeItem(atPath: checkpointPath)
    }

    /// The run's `config.json`.
    public func readConfig() throws -> TrainingConfig {
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw TrainingError.runFolder(path: path, problem: "has no config.json; nothing to resume")
        }
        do { return try JSONDecoder().decode(TrainingConfig.self, from: data) } catch {
            throw TrainingError.runFolder(path: path, problem: "config.json is not a valid configuration (\(error))")
        }
    }

    /// Appends one epoch to metrics.jsonl. The file is rewritten atomically (it is small), so a
    /// kill never leaves a torn line; an epoch already present (after a resume) is replaced.
    func append(_ metrics: EpochMetrics) throws {
        var lines = readMetricsLines().filter { line in
            (try? JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8)))?.epoch != metrics.epoch
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        lines.append(String(decoding: try encoder.encode(metrics), as: UTF8.self))
        try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: metricsPath)
    }

    func readMetricsLines() -> [String] {
        guard let data = FileManager.default.contents(atPath: metricsPath) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Every epoch recorded so far.
    public func metrics() throws -> [EpochMetrics] {
        try readMetricsLines().map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
    }
}

extension AtomicFile {
    /// Writes `data` to `path` atomically; failures name the file.
    static func write(_ data: Data, to path: String) throws {
        do {
            try data.withUnsafeBytes { try AtomicFile.write($0, to: path) }
        } catch {
            throw TrainingError.runFolder(path: path, problem: "could not be written (\(error))")
        }
    }
}
