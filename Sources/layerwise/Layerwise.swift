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
    /// again with OMP_WAIT_POLICY=passive. OpenBLAS reads OPENBLAS_CORETYPE when it loads too:
    /// when it is unset and OpenBLAS picked kernels without AVX2 on a CPU with AVX2 or AVX-512
    /// (it does on CPUs newer than it knows; `BLAS.betterCoreType`), the restart also names the
    /// kernel set the CPU runs. A user's own settings are left alone.
    static func main() {
        var restart = false
        if getenv("OMP_WAIT_POLICY") == nil {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            restart = true
        }
        if getenv("OPENBLAS_CORETYPE") == nil,
           let core = BLAS.betterCoreType(picked: BLAS.coreName, avx512: KernelPath.avx512.isSupported,
                                          avx2: KernelPath.avx2.isSupported) {
            setenv("OPENBLAS_CORETYPE", core, 1)
            restart = true
        }
        if restart {
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // execv returns only on failure: carry on with the settings this process loaded with.
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
