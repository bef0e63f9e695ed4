/// Why a run stopped or could not start. Descriptions read as sentences and name what to fix.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case nonFiniteLoss(layer: String, step: Int, epoch: Int, value: Float)
    case invalidConfig(String)
    case runFolder(path: String, problem: String)
    case checkpoint(path: String, problem: String)
    case data(String)
    /// The planner's predicted ledger peak does not fit `--memory-budget`; the message has the numbers.
    case overMemoryBudget(String)
    /// A pipelined run (`--stages`) cannot start or lost a stage; the message says which and why.
    case stages(String)

    /// The error as a sentence that names what to fix.
    public var description: String {
        switch self {
        case let .nonFiniteLoss(layer, step, epoch, value):
            return "loss of \(layer) became \(value) at step \(step) of epoch \(epoch + 1); stopped, the last checkpoint is intact"
        case let .invalidConfig(problem):
            return "invalid configuration: \(problem)"
        case let .runFolder(path, problem):
            return "run folder \(path): \(problem)"
        case let .checkpoint(path, problem):
            return "checkpoint \(path): \(problem)"
        case let .data(problem):
            return problem
        case let .overMemoryBudget(message):
            return message
        case let .stages(problem):
            return "stages: \(problem)"
        }
    }
}
