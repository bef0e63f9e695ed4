import Foundation
import Layers
import Tensors
import Reports

/// `layerwise profile`: runs local and backprop for the same request, each in a fresh process
/// of the given executable (`<executable> profile-mode --request FILE --mode M --result FILE`),
/// so each mode's peak RSS is its own; then compares them and writes the reports.
public struct MemoryProfileRun {
    public var request: ProfileRequest
    /// The `layerwise` binary to re-invoke.
    public var executable: String
    public var log: (String) -> Void

    /// Sets the BLAS (and oneDNN) thread count to the request's here, in the parent process:
    /// oneDNN's scratch depends on it (Winograd keeps per-thread buffers), so the planner's
    /// predictions (`plans`) must be made at the count the modes run with.
    public init(request: ProfileRequest, executable: String, log: @escaping (String) -> Void = { print($0) }) {
        self.request = request
        self.executable = executable
        self.log = log
        BLAS.setThreads(request.threads ?? ProcessorCount.online)
    }

    public static let modes = ["local", "backprop"]

    /// The planner's prediction for each mode, in `modes` order (local with the request's chunk).
    public var plans: [MemoryPlan] {
        MemoryProfileRun.modes.map {
            let spec = request.spec(mode: $0)
            return MemoryPlanner.plan(request.table(spec), batchSize: request.batchSize, chunk: request.chunk, optimizer: request.optimizer(mode: $0),
                                      round: $0 == "local" ? request.greedyRound(spec) : nil)
        }
    }

    /// `--memory-budget` for local mode (backprop, the comparison, runs as it is): the planner
    /// picks the chunk size (or checks the one given) and the request takes it; throws
    /// `overMemoryBudget` when nothing fits.
    /// With `allowLeanState` it may store local mode's optimizer moments in a leaner format
    /// (`MemoryBudget.choose`); backprop keeps the format asked for.
    public mutating func applyBudget(_ budget: Int, allowLeanState: Bool = false) throws -> BudgetPlan {
        let choice = try MemoryBudget.choose(request.spec(mode: "local"), batchSize: request.batchSize, chunk: request.chunk,
                                             optimizer: request.optimizer, allowLeanState: allowLeanState, simOutput: request.simOutput,
                                             budget: budget, overhead: .profile)
        request.chunk = choice.plan.chunk
        request.simOutput = choice.keepsSimOutput ? .keep : request.simOutput
        request.localStateFormat = choice.optimizer.stateFormat
        request.model.winograd = choice.winograd  // both modes: the comparison runs the same convolutions
        return choice
    }

    /// The greedy schedule under a budget: every round's chunk (the profile runs no cache), and
    /// the round measured: the one `--round` names, else the round with the largest peak.
    public mutating func applyGreedyBudget(_ budget: Int) throws -> GreedyBudgetPlan {
        let choice = try MemoryBudget.chooseGreedy(request.spec(mode: "local"), batchSize: request.batchSize, chunk: request.chunk,
                                                   optimizer: request.optimizer, keepsSimOutput: request.simOutput == .keep, budget: budget, diskBudget: nil, cache: nil,
                                                   overhead: .profile)
        let round = request.round ?? choice.largest.round
        request.round = round
        request.chunk = choice.rounds[round].plan.chunk
        return choice
    }

    /// Runs both modes in child processes and returns the comparison.
    public func run() throws -> MemoryComparison {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("layerwise-profile-\(getpid())").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let requestPath = scratch + "/request.json"
        try JSONEncoder().encode(request).write(to: URL(fileURLWithPath: requestPath))
        var profiles: [ModeProfile] = []
        for mode in MemoryProfileRun.modes {
            let resultPath = scratch + "/\(mode).json"
            log("running \(mode) mode in a fresh process ...")
            let status = try MemoryProfileRun.runChild(executable, ["profile-mode", "--request", requestPath, "--mode", mode, "--result", resultPath])
            guard status == 0 else {
                throw TrainingError.data("the \(mode) run (\(executable) profile-mode) failed with status \(status)")
            }
            profiles.append(try JSONDecoder().decode(ModeProfile.self, from: Data(contentsOf: URL(fileURLWithPath: resultPath))))
        }
        return MemoryComparison(local: profiles[0], backprop: profiles[1])
    }

    /// "planner, local (predsim): predicted 52,327,464 bytes, measured 52,327,464 bytes without the loader (exact)" for each mode.
    public func plannerCheck(_ comparison: MemoryComparison) -> [String] {
        zip(plans, [comparison.local, comparison.backprop]).map { plan, profile in
            let measured = profile.peak.total - profile.peak.byCategory[.loader]
            let verdict = measured == plan.peak ? "exact" : "differs by \(ByteFormat.exact(measured - plan.peak)) bytes"
            return "planner, \(MemoryBudget.name(plan)): predicted \(ByteFormat.exact(plan.peak)) bytes, "
                + "measured \(ByteFormat.exact(measured)) bytes without the loader (\(verdict))"
        }
    }

    /// Runs a child process with stdout and stderr passed through; returns its exit status
    /// (128 + signal when killed by a signal, as a shell reports it).
    public static func runChild(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// This process's executable, for re-invoking it.
    public static var currentExecutable: String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }
}
