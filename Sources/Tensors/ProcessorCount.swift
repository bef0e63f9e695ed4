#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one answer to "how many cores": default thread counts of the BLAS, the optimizer's
/// parallel update, the converter and the benchmarks all start from it.
public enum ProcessorCount {
    /// Processors online, at least 1.
    public static var online: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}
