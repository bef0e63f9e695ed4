import Foundation
import XCTest

/// A dataset some tests read from outside the repository (a Debian dataset package). Where it
/// is missing, a test skips on a developer's machine but fails where the dataset must be there:
/// under `CI=true`, and under `LAYERWISE_REQUIRE_DATA=1`, which `tools/test.sh` exports after
/// installing it. A skipped end-to-end test would otherwise look like a passing one.
public struct RequiredDataset: Equatable, Sendable {
    /// What the messages call it.
    public let name: String
    /// The folder the dataset's files are in.
    public let directory: String
    /// A file whose presence means the dataset is installed.
    public let marker: String
    /// How to install it.
    public let install: String

    public init(name: String, directory: String, marker: String, install: String) {
        self.name = name
        self.directory = directory
        self.marker = marker
        self.install = install
    }

    /// Debian's dataset-fashion-mnist: the IDX files, gzipped.
    public static let fashionMNIST = RequiredDataset(name: "Fashion-MNIST", directory: "/usr/share/datasets/fashion-mnist",
                                                     marker: "train-images-idx3-ubyte.gz", install: "apt-get install dataset-fashion-mnist")

    /// Whether a missing dataset is a failure in `environment`: `CI` or `LAYERWISE_REQUIRE_DATA`
    /// set to `true`, `1` or `yes` (any case).
    public static func isRequired(in environment: [String: String]) -> Bool {
        func on(_ key: String) -> Bool { ["true", "1", "yes"].contains(environment[key]?.lowercased() ?? "") }
        return on("CI") || on("LAYERWISE_REQUIRE_DATA")
    }

    /// Whether the marker file exists.
    public var isInstalled: Bool { FileManager.default.fileExists(atPath: directory + "/" + marker) }

    /// Returns when the dataset is installed. Otherwise throws `Missing` (the test fails) where
    /// the dataset is required, and `XCTSkip` (the test is skipped) where it is not. Call it
    /// first in `setUpWithError` or at the top of a test.
    public func require(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if isInstalled { return }
        if RequiredDataset.isRequired(in: environment) { throw Missing(dataset: self) }
        throw XCTSkip("\(name) is not installed at \(directory) (\(install))")
    }

    /// The failure a missing, required dataset raises.
    public struct Missing: Error, CustomStringConvertible {
        public let dataset: RequiredDataset
        public var description: String {
            "\(dataset.name) is required here (CI or LAYERWISE_REQUIRE_DATA is set) but \(dataset.directory)/\(dataset.marker) "
                + "does not exist; install it with \(dataset.install)."
        }
    }
}
