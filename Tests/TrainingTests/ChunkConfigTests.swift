import Foundation
import XCTest
@testable import Training

/// `--chunk` is a setting of the run, not of the model: older config.json files (without it)
/// still load, and a run may resume with another chunk size.
final class ChunkConfigTests: XCTestCase {
    func testConfigWithoutChunkDecodesAsWholeBatches() throws {
        var config = TrainingConfig()
        config.chunk = 16
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        XCTAssertEqual(json["chunk"] as? Int, 16)
        json.removeValue(forKey: "chunk")
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(decoded.chunk)
    }

    func testChunkSizeIsNotPartOfTheResumeKey() {
        var a = TrainingConfig(), b = TrainingConfig()
        a.chunk = 8
        b.chunk = nil
        XCTAssertEqual(a.resumeKey, b.resumeKey)
    }

    func testChunkMustBePositive() {
        var config = TrainingConfig()
        config.chunk = 0
        XCTAssertThrowsError(try config.validate()) { error in
            guard case TrainingError.invalidConfig(let message) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(message, "--chunk must be positive (got 0)")
        }
        config.chunk = 1
        XCTAssertNoThrow(try config.validate())
    }

    func testProfileRequestWithoutChunkDecodes() throws {
        var request = ProfileRequest()
        request.chunk = 4
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as! [String: Any]
        json.removeValue(forKey: "chunk")
        XCTAssertNil(try JSONDecoder().decode(ProfileRequest.self, from: JSONSerialization.data(withJSONObject: json)).chunk)
    }
}
