import FileSystem
import Foundation

/// Writes every report of a comparison into one directory: `summary.txt`, `memory.json`,
/// `memory.html` and `trace.json`, each atomically (a reader never sees a half-written file).
public struct ReportWriter {
    /// How much of each timeline goes into each file, and whether to stamp the time.
    public struct Options: Sendable {
        /// ISO 8601 time for `memory.json` and the HTML footer; nil (the default) keeps the
        /// output reproducible byte for byte.
        public var generatedAt: String?
        /// Timeline points per mode in `memory.json`; nil writes every event.
        public var jsonPointsPerMode: Int?
        public var htmlPointsPerMode: Int
        public var tracePointsPerMode: Int

        public init(generatedAt: String? = nil, jsonPointsPerMode: Int? = 10_000, htmlPointsPerMode: Int = 2000,
                    tracePointsPerMode: Int = 20_000) {
            self.generatedAt = generatedAt
            self.jsonPointsPerMode = jsonPointsPerMode
            self.htmlPointsPerMode = htmlPointsPerMode
            self.tracePointsPerMode = tracePointsPerMode
        }

        /// Options stamped with the current time.
        public static func stamped(now: Date = Date()) -> Options {
            Options(generatedAt: ISO8601DateFormatter().string(from: now))
        }
    }

    /// File names the writer produces, in writing order.
    public static let fileNames = ["summary.txt", "memory.json", "memory.html", "trace.json"]

    public var directory: String
    public var options: Options

    public init(directory: String, options: Options = Options()) {
        self.directory = directory
        self.options = options
    }

    /// Creates the directory if needed and writes all reports; returns the paths written.
    @discardableResult
    public func write(_ comparison: MemoryComparison) throws -> [String] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ReportError.writeFailed(path: directory, errno: ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { Int32($0.code) } ?? EIO)
        }
        var document = MemoryDocument(comparison: comparison, generatedAt: options.generatedAt)
        if let points = options.jsonPointsPerMode { document = document.downsampled(maxPoints: points) }
        let contents: [Data] = [
            Data(TerminalSummary(comparison).render().utf8),
            try document.jsonData(),
            Data(HTMLReport(comparison, maxPointsPerMode: options.htmlPointsPerMode, generatedAt: options.generatedAt).render().utf8),
            try PerfettoTrace(comparison, maxPointsPerMode: options.tracePointsPerMode).jsonData(),
        ]
        var written: [String] = []
        for (name, data) in zip(ReportWriter.fileNames, contents) {
            let path = directory + "/" + name
            do {
                try data.withUnsafeBytes { try AtomicFile.write($0, to: path) }
            } catch let FileSystemError.io(file, _, code) {
                throw ReportError.writeFailed(path: file, errno: code)
            }
            written.append(path)
        }
        return written
    }
}
