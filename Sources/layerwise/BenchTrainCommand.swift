import ArgumentParser
import Benchmarks
import Foundation
import Layers
import Tensors
import Training

/// `layerwise bench train`: samples/s of local and backprop training on real shards.
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Samples/s of training steps (loading and augmentation included), local vs backprop, with a per-phase time split.")

    @Option(help: "Dataset folder with a train split.")
    var data: String = "data/fashion-mnist"
    @Option(help: "Comma-separated losses to measure.")
    var losses: String = "predsim,backprop"
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Batch size.")
    var batchSize: Int = 128
    @Option(help: "Steps per timed repeat.")
    var steps: Int = 40
    @Option(help: "Timed repeats (medians are reported).")
    var repeats: Int = 3
    @Option(help: "Untimed warm-up steps before the timed repeats.")
    var warmup: Int = 3
    @Option(help: "BLAS threads (default: all cores).")
    var threads: Int?
    @Option(help: "Also measure each local loss with chunked local steps of N examples (same run), to price the recomputation.")
    var chunk: Int?
    @Option(help: ArgumentHelp("Comma-separated optimizer state formats to measure each loss with: fp32, bf16, int8.", valueName: "formats"))
    var optimizerStates: String = "fp32"
    @Option(help: ArgumentHelp("Comma-separated: recompute, keep (the conv sim heads' output, see train --sim-output); each local loss with a learned sim head is measured with each.", valueName: "choices"))
    var simOutput: String = "recompute"
    @Flag(help: "Also time each block by section (conv passes with their GFLOP/s, oneDNN reorders, sim head, pred head, BatchNorm, pooling, update, loader).")
    var breakdown = false
    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let spec = modelOptions.spec(loss: .predsim)  // each measured loss sets its own loss, beta, nonlinearity
        let kinds = try losses.split(separator: ",").map { name -> LossKind in
            guard let k = LossKind(rawValue: String(name)) else { throw ValidationError("unknown loss \(name)") }
            return k
        }
        var options = TrainingBenchmark.Options(data: data, spec: spec, losses: kinds)
        options.batchSize = batchSize
        options.steps = steps
        options.repeats = repeats
        if warmup < 1 { throw ValidationError("--warmup must be at least 1 (the first step makes oneDNN's primitives)") }
        options.warmup = warmup
        options.threads = threads ?? ProcessorCount.online
        if let chunk, chunk <= 0 { throw ValidationError("--chunk must be positive") }
        options.chunk = chunk
        options.stateFormats = try optimizerStates.split(separator: ",").map { name in
            guard let f = OptimizerStateFormat(rawValue: String(name)) else { throw ValidationError("--optimizer-states: unknown format \(name) (fp32, bf16 or int8)") }
            return f
        }
        options.simOutputs = try simOutput.split(separator: ",").map { name in
            guard let s = SimOutput(rawValue: String(name)) else { throw ValidationError("--sim-output: unknown choice \(name) (keep or recompute)") }
            return s
        }
        options.breakdown = breakdown
        let results = try TrainingBenchmark.run(options)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
            return
        }
        print("\(spec.kind == .mlp ? "mlp \(spec.numLayers)x\(spec.numHidden)" : "\(spec.kind.rawValue) x\(spec.featMult) + \(spec.numHidden)"), batch \(batchSize), \(options.threads) BLAS threads (OpenBLAS \(BLAS.coreName)), conv engine \(ShapeTable(spec: spec).engine.rawValue), \(steps) steps x \(repeats) repeats (median)")
        for r in results {
            print(String(format: "%-18@ %8.0f samples/s  %6.1f GFLOP/s  (%.1f MFLOP/sample)  ledger peak %.1f MiB",
                         r.loss, r.samplesPerSecond, r.gflops, r.mflopPerSample, Double(r.ledgerPeakBytes) / 1_048_576))
            let total = r.secondsPerStepByPhase.values.reduce(0, +)
            let parts = r.secondsPerStepByPhase.sorted { $0.value > $1.value }.map {
                String(format: "%@ %.1f ms (%.0f%%)", $0.key, $0.value * 1e3, 100 * $0.value / max(total, 1e-12))
            }
            print("             " + parts.joined(separator: ", "))
            if spec.kind == .mlp {  // the bound is the sgemm rate at the MLP's shapes: meaningless for conv nets
                print(String(format: "             BLAS sgemm in this run %.1f GFLOP/s at the MLP's shapes: GEMM bound %.0f samples/s, achieved %.2f of it",
                             r.gemmGFLOPS, r.gemmBoundSamplesPerSecond, r.samplesPerSecond / max(r.gemmBoundSamplesPerSecond, 1e-9)))
            }
            if let breakdown = r.breakdown { print(breakdown.text) }
        }
    }
}
