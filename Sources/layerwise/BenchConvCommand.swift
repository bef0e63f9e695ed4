import ArgumentParser
import Benchmarks
import Tensors

/// `layerwise bench conv`: GFLOP/s of the three conv passes at vgg8b's shapes, each engine in the
/// same run (medians).
struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Conv forward/backward-data/backward-weights GFLOP/s at vgg8b's shapes, im2col vs oneDNN.")

    @Option(help: "Batch sizes, comma-separated.")
    var batch: String = "32,128"

    @Option(help: "Threads (BLAS and oneDNN).")
    var threads: Int = 2

    @Option(help: "Timed repeats per measurement; medians are reported.")
    var repeats: Int = 5

    @Option(help: "Engines, comma-separated: im2col, dnnl.")
    var engines: String = "im2col,dnnl"

    func validate() throws {
        if threads < 1 || repeats < 1 { throw ValidationError("--threads and --repeats must be at least 1.") }
        if batchSizes.isEmpty || batchSizes.contains(where: { $0 < 1 }) { throw ValidationError("bad --batch \(batch)") }
        if engineList.isEmpty { throw ValidationError("bad --engines \(engines)") }
    }

    private var batchSizes: [Int] { batch.split(separator: ",").compactMap { Int($0) } }
    private var engineList: [ConvEngine] { engines.split(separator: ",").compactMap { ConvEngine(rawValue: String($0)) } }

    func run() throws {
        print("oneDNN \(DNNLConvolution.version)")
        for b in batchSizes {
            for result in ConvBenchmark.run(batch: b, threads: threads, repeats: repeats, engines: engineList) { print(result) }
        }
    }
}
