import Foundation
import Reports

/// `layerwise profile`: runs local and backprop for the same request, each in a fresh process
/// of the given executable (`<executable> profile-mode --request FILE --mode M --result FILE`),
/// so each mode's peak RSS is its own; then compares them and writes the reports.
public struct MemoryProfileRun {
    public var request: ProfileRequest
    /// The `layerwise` binary to re-invoke.
    public var executable: String
    public var log: (String) -> Void

    public init(request: ProfileRequest, executable: String, log: @escaping (String) -> Void = { print($0) }) {
        self.request = request
        self.executable = executable
        self.log = log
    }

    public static let modes = ["local", "backprop"]

    /// The planner's prediction for each mode, in `modes` order; empty when the planner does not
    /// cover the model (`MemoryPlanner.covers`).
    public var plans: [MemoryPlan] {
        guard MemoryPlanner.covers(request.model) else { return [] }
        return MemoryProfileRun.modes.map { MemoryPlanner.plan(request.spec(mode: $0), batchSize: request.batchSize, optimizer: request.optimizer) }
    }

    /// Refuses (throws `overMemoryBudget`) when either mode's predicted peak exceeds `budget`.
    public func checkBudget(_ budget: Int) throws {
        guard MemoryPlanner.covers(request.model) else {
            throw TrainingError.invalidConfig("--memory-budget: the memory planner covers the mlp only; \(request.model.kind.rawValue) is not planned yet (run `layerwise profile` without it to measure)")
        }
        for mode in MemoryProfileRun.modes {
            try MemoryBudget.check(request.spec(mode: mode), batchSize: request.batchSize, optimizer: request.optimizer, budget: budget)
        }
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

    /// "planner: local predicted 49.9 MiB, measured 49.9 MiB (exact)" for each mode.
    public func plannerCheck(_ comparison: MemoryComparison) -> [String] {
        guard MemoryPlanner.covers(request.model) else {
            return ["planner: no prediction for \(request.model.kind.rawValue) (the planner covers the mlp only); the figures above are measured"]
        }
        return zip(plans, [comparison.local, comparison.backprop]).map { plan, profile in
            if let chunk = request.chunk, plan.loss.isLocal {
                return "planner, \(MemoryBudget.name(plan)): predicts whole-batch steps (\(ByteFormat.exact(plan.peak)) bytes); "
                    + "local steps in chunks of \(chunk) are measured only"
            }
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
