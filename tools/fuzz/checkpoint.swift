// Layerwise checkpoints (tools/fuzz.sh checkpoint): a safetensors file read as `eval` and
// `train --resume` read it: its metadata (model spec, normalisation, trainer state, optimizer
// steps), an inference network built from the spec it names, and its tensors loaded into a
// network of the seeds' model (mlp, 1 x 4 hidden, 4x4 inputs, 3 classes).
import Foundation
import Layers
import MemoryLedger
@testable import Training

private let seedSpec = try! JSONDecoder().decode(ModelSpec.self, from: Data("""
    {"beta":0.99,"classes":3,"dimInDecoder":1024,"dropout":0.025,"featMult":1,"inputShape":[1,4,4],"kind":"mlp",\
    "loss":"predsim","nonlinearity":"leakyrelu","numHidden":4,"numLayers":1}
    """.utf8))
private let ledger = Ledger()
private let network = Network(spec: seedSpec, seed: 1, ledger: ledger)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let path = FuzzInput.write(UnsafeRawBufferPointer(start: data, count: count), to: "checkpoint.safetensors")
    _ = try? Checkpoint.normalization(at: path)
    _ = try? Checkpoint.spec(at: path)
    _ = try? Checkpoint.inferenceNetwork(from: path, ledger: ledger)
    _ = try? Checkpoint.load(from: path, into: network)
    _ = try? Checkpoint.load(from: path, into: network, includeTraining: false)
    return 0
}
