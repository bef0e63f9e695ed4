@testable import Training

extension Trainer {
    /// What a checkpoint of this trainer's network holds, by name: every tensor and, with
    /// `moments`, every optimizer moment (dequantised). Tests compare runs with it bit for bit.
    func checkpointArrays(moments: Bool) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (name, t) in Checkpoint.namedTensors(network) { out[name] = t.array }
        if moments {
            for (name, m) in Checkpoint.namedMoments(network) { out[name] = m.values() }
        }
        return out
    }
}
