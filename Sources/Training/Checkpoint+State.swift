import Foundation

extension Checkpoint {
    /// The trainer state a checkpoint holds, read without its tensors: a greedy run needs the
    /// round before it makes that round's heads and optimizer state to load into.
    static func trainerState(at path: String) throws -> TrainerState {
        let file = try open(path)
        guard let json = file.metadata["layerwise.state"],
              let state = try? JSONDecoder().decode(TrainerState.self, from: Data(json.utf8)) else {
            throw TrainingError.checkpoint(path: path, problem: "has no readable trainer state")
        }
        return state
    }
}
