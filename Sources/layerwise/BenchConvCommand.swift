import ArgumentParser
import Benchmarks
import Tensors

/// `layerwise bench conv`: GFLOP/s of the three conv passes at vgg8b's shapes, each engine in the
/// same run (medians).
struct BenchConvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Conv forward/backward-data/backward-weights GFLOP/s at vgg8b's shapes, im2col vs oneDNN vs Winograd.")

    @Option(help: "Batch sizes, comma-separated.")
    var batch: String = "32,128"

    @Option(help: "Threads (BLAS and oneDNN).")
    var threads: Int = 2

    @Option(help: "Timed repeats per measurement; medians are reported.")
    var repeats: Int = 5

    @Option(help: "Engines, comma-separated: im2col, dnnl, dnnl-winograd, dnnl-bf16, winograd.")
    var engines: String = "im2col,dnnl"

    @Flag(help: "Also time the sim heads' C -> C shapes that no block has (128 and 256 at 28x28, 512 at 14x14).")
    var simHeads = false

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
            let shapes = ConvBenchmark.vgg8bShapes + (simHeads ? ConvBenchmark.vgg8bSimHeadShapes : [])
            for result in ConvBenchmark.run(shapes: shapes, batch: b, threads: threads, repeats: repeats, engines: engineList) {
                print(result)
            }
        }
    }
}
