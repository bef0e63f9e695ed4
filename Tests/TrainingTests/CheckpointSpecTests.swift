import Foundation
import Layers
import MemoryLedger
import Shards
import XCTest
@testable import Training

/// The model spec inside a checkpoint is outside data: `eval --checkpoint FILE` builds a network
/// from it. Specs that no run writes are refused, naming the file, before anything is allocated.
/// Found by tools/fuzz.sh checkpoint: an empty input shape, negative sizes and a VGG input too
/// small for its poolings trapped while building the network; huge sizes in a small file made it
/// allocate terabytes.
final class CheckpointSpecTests: XCTestCase {
    private var directory = ""
    override func setUp() { directory = FashionMNISTSlice.temporaryDirectory("checkpoint-spec") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func smallMLP() -> ModelSpec {
        var spec = ModelSpec()
        spec.inputShape = [1, 4, 4]
        spec.classes = 3
        spec.numLayers = 1
        spec.numHidden = 4
        return spec
    }

    /// A real checkpoint of `smallMLP()` with its `layerwise.spec` replaced by `edit` applied to its JSON object.
    private func checkpoint(_ name: String, edit: (inout [String: Any]) -> Void) throws -> String {
        let path = directory + "/" + name + ".safetensors"
        let network = Network(spec: smallMLP(), seed: 1, ledger: Ledger())
        try Checkpoint.save(network: network, state: TrainerState(cursor: LoaderCursor(fingerprint: "none", seed: 1, epoch: 0, recordsConsumed: 0,
                                                                                         shuffle: false, poolBlocks: 1)), to: path)
        let file = try SafeTensors.read(path)
        var spec = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(file.metadata["layerwise.spec"]!.utf8)) as? [String: Any])
        edit(&spec)
        var metadata = file.metadata
        metadata["layerwise.spec"] = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let entries = try file.tensors.map { info in
            try file.withBytes(info.name) { SafeTensorsEntry(name: info.name, dtype: info.dtype, shape: info.shape, bytes: Array($0)) }
        }
        try SafeTensors.write(entries, metadata: metadata, to: path)
        return path
    }

    func testCheckpointSpecsThatNoRunWritesAreRefusedNamingTheFile() throws {
        // The unedited file loads: the checks do not refuse what training writes.
        let valid = try checkpoint("valid") { _ in }
        XCTAssertEqual(try Checkpoint.spec(at: valid), smallMLP())
        XCTAssertNoThrow(try Checkpoint.inferenceNetwork(from: valid, ledger: Ledger()))

        let cases: [(String, (inout [String: Any]) -> Void, String)] = [
            ("empty-input", { $0["inputShape"] = [Int]() }, "input shape []"),
            ("negative-input", { $0["inputShape"] = [1, -4, 4] }, "input shape [1, -4, 4]"),
            ("negative-hidden", { $0["numHidden"] = -3 }, "-3 hidden units"),
            ("no-layers", { $0["numLayers"] = 0 }, "0 hidden layers"),
            ("no-classes", { $0["classes"] = 0 }, "0 classes"),
            ("vgg-too-small", { $0["kind"] = "vgg8b"; $0["inputShape"] = [3, 2, 2] }, "vgg8b halves its input 4 times but the input is 2x2"),
            ("vgg-negative-width", { $0["kind"] = "vgg8b"; $0["inputShape"] = [3, 32, 32]; $0["featMult"] = -1 }, "feature multiplier -1"),
            ("huge-hidden", { $0["numHidden"] = 1_000_000 }, "parameters need"),
            ("huge-input", { $0["inputShape"] = [100_000, 100_000, 100_000] }, "input shape [100000, 100000, 100000]"),
        ]
        for (name, edit, problem) in cases {
            let path = try checkpoint(name, edit: edit)
            for load in [{ _ = try Checkpoint.spec(at: path) }, { _ = try Checkpoint.inferenceNetwork(from: path, ledger: Ledger()) }] {
                XCTAssertThrowsError(try load(), name) { error in
                    guard case TrainingError.checkpoint(path, let message) = error else { return XCTFail("\(name): \(error)") }
                    XCTAssertTrue(message.contains("has a model spec that no run writes") && message.contains(problem), "\(name): \(message)")
                }
            }
        }
    }
}
