/// When the hidden blocks of a local loss train.
public enum TrainingSchedule: String, Codable, Sendable, CaseIterable {
    /// The paper's: every block steps on every batch, each with its heads and optimizer for the
    /// whole run.
    case simultaneous
    /// Block by block (greedy layer-wise training, Belilovsky et al. 2019): in round k only
    /// block k trains, with its heads and optimizer; blocks before it are frozen (forward only,
    /// BatchNorm running statistics, no dropout, booked as `frozenWeights`); blocks after it
    /// have no heads or optimizer state yet. The output layer trains in the last round.
    case greedy
}
