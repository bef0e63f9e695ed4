import ArgumentParser
import Tensors
import Training
#if canImport(Glibc)
import Glibc
#endif

@main
struct Layerwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layerwise",
        abstract: "Train neural networks with local error signals on small CPU-only machines, and prove the memory they save.",
        subcommands: [ShardsCommand.self, TrainCommand.self, EvalCommand.self, PlanCommand.self, ProfileCommand.self, ProfileModeCommand.self,
                      BenchCommand.self, SelfCheckCommand.self])

    /// Standard output is line-buffered even into a pipe, so per-epoch lines appear as they
    /// happen under `tee` or a log collector, not when the process exits.
    ///
    /// oneDNN's convolutions are fastest here only when OpenMP's threads sleep instead of spinning
    /// against OpenBLAS's (`ConvEngine.default`), and libgomp reads OMP_WAIT_POLICY once, when it
    /// loads: so the first thing the CLI does, when the variable is unset, is to start itself
    /// again with OMP_WAIT_POLICY=passive. A user's own setting is left alone.
    static func main() {
        if getenv("OMP_WAIT_POLICY") == nil {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // execv returns only on failure: carry on with the default wait policy.
        }
        setvbuf(stdout, nil, _IOLBF, 0)
        if let request = KernelPath.rejectedRequest {
            let usable = KernelPath.allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", ")
            ProgressReporter.write("warning: LAYERWISE_KERNELS=\(request) is not a kernel path this CPU runs (it runs \(usable)); "
                                   + "using \(KernelPath.current.rawValue)\n")
        }
        main(nil)
    }
}
