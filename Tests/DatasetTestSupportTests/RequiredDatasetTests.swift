import DatasetTestSupport
import Foundation
import XCTest

/// The rule that turns a missing dataset from a skip into a failure, checked on datasets that
/// are made up (a folder that does not exist, a temporary one), so nothing is uninstalled.
final class RequiredDatasetTests: XCTestCase {
    let missing = RequiredDataset(name: "Nothing", directory: "/nonexistent/layerwise-required-dataset-\(getpid())",
                                  marker: "data.gz", install: "apt-get install nothing")

    func testCIOrRequireDataMakesADatasetRequired() {
        XCTAssertFalse(RequiredDataset.isRequired(in: [:]))
        XCTAssertFalse(RequiredDataset.isRequired(in: ["CI": "false", "LAYERWISE_REQUIRE_DATA": "0"]))
        XCTAssertFalse(RequiredDataset.isRequired(in: ["CI": ""]))
        XCTAssertTrue(RequiredDataset.isRequired(in: ["CI": "true"]))
        XCTAssertTrue(RequiredDataset.isRequired(in: ["CI": "TRUE"]))
        XCTAssertTrue(RequiredDataset.isRequired(in: ["CI": "1"]))
        XCTAssertTrue(RequiredDataset.isRequired(in: ["LAYERWISE_REQUIRE_DATA": "1"]))
        XCTAssertTrue(RequiredDataset.isRequired(in: ["CI": "false", "LAYERWISE_REQUIRE_DATA": "yes"]))
    }

    func testMissingDatasetSkipsWhereItIsNotRequired() {
        XCTAssertFalse(missing.isInstalled)
        XCTAssertThrowsError(try missing.require(environment: [:])) { error in
            XCTAssertTrue(error is XCTSkip, "expected a skip, got \(error)")
        }
    }

    func testMissingDatasetFailsUnderCIAndUnderRequireData() {
        for environment in [["CI": "true"], ["LAYERWISE_REQUIRE_DATA": "1"]] {
            XCTAssertThrowsError(try missing.require(environment: environment)) { error in
                XCTAssertFalse(error is XCTSkip, "a required dataset must not skip (\(environment))")
                XCTAssertEqual((error as? RequiredDataset.Missing)?.dataset, missing)
                let message = "\(error)"
                XCTAssertTrue(message.contains(missing.directory + "/data.gz"), message)
                XCTAssertTrue(message.contains("apt-get install nothing"), message)
            }
        }
    }

    func testInstalledDatasetPassesEverywhere() throws {
        let directory = NSTemporaryDirectory() + "layerwise-required-dataset-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/data.gz", contents: Data([1])))
        let present = RequiredDataset(name: "Something", directory: directory, marker: "data.gz", install: "nothing to do")
        XCTAssertTrue(present.isInstalled)
        for environment in [[:], ["CI": "true"], ["LAYERWISE_REQUIRE_DATA": "1"]] {
            XCTAssertNoThrow(try present.require(environment: environment))
        }
    }

}
