import Foundation
import Layers
import MemoryLedger
import Shards
import Tensors
import Training

/// `layerwise bench train`: samples/s of whole training steps (loading and augmentation
/// included) for local and backprop modes of the same model, measured in one run, with the
/// time split by phase from the ledger's markers.
public enum TrainingBenchmark {
    public struct Options: Sendable {
        public var data: String
        public var spec: ModelSpec
        public var losses: [LossKind]
        public var batchSize: Int = 128
        public var steps: Int = 40
        public var repeats: Int = 3
        /// Untimed steps before the timed repeats (first touch of buffers, oneDNN primitives).
        public var warmup: Int = 3
        public var threads: Int = ProcessorCount.online
        /// Also measure each local loss with chunked local steps of this many examples, in the
        /// same run as the whole-batch steps (rows named "predsim chunk 16").
        public var chunk: Int?
        /// Optimizer state formats to measure each loss with (rows named "predsim int8" for
        /// every format but fp32).
        public var stateFormats: [OptimizerStateFormat] = [.fp32]
        /// Each local loss with the conv sim heads recomputing their output, keeping it, or both
        /// (rows named "predsim keep").
        public var simOutputs: [SimOutput] = [.recompute]
        /// Time the steps by block and section (`StepProfiler`): `ModeResult.breakdown`.
        public var breakdown = false
        public init(data: String, spec: ModelSpec, losses: [LossKind]) {
            self.data = data
            self.spec = spec
            self.losses = losses
        }
    }

    public struct ModeResult: Codable, Sendable {
        public var loss: String
        /// Median samples/s over the repeats.
        public var samplesPerSecond: Double
        public var repeats: [Double]
        /// Seconds per step by phase (median repeat), "load" included.
        public var secondsPerStepByPhase: [String: Double]
        public var ledgerPeakBytes: Int
        public var mflopPerSample: Double
        public var gflops: Double
        /// The BLAS's own sgemm rate at the MLP's big shapes, measured right after each timed
        /// repeat (median), so it sees the same load from other processes as the steps did.
        public var gemmGFLOPS: Double
        /// With `Options.breakdown`: all timed repeats' steps by block and section.
        public var breakdown: TrainingBreakdown?
        /// samples/s if every step's FLOPs ran at `gemmGFLOPS` and nothing else took time.
        public var gemmBoundSamplesPerSecond: Double { gemmGFLOPS * 1e3 / mflopPerSample }
    }

    public static func run(_ options: Options, log: (String) -> Void = { _ in }) throws -> [ModeResult] {
        BLAS.setThreads(options.threads)
        let dataset = try ShardDataset(directory: options.data)
        let source = try dataset.split("train")
        var results: [ModeResult] = []
        let runs = options.losses.flatMap { loss -> [(LossKind, Int?, OptimizerStateFormat, SimOutput)] in
            let chunks: [Int?] = options.chunk.map { loss.isLocal ? [nil, $0] : [nil] } ?? [nil]
            return chunks.flatMap { chunk in
                options.stateFormats.flatMap { format in
                    // keep changes only whole-batch steps of a loss with a learned sim head
                    let sims = chunk == nil && loss.usesSim && !loss.isBackpropFree ? options.simOutputs : [.recompute]
                    return sims.map { (loss, chunk, format, $0) }
                }
            }
        }
        for (loss, chunk, format, simOutput) in runs {
            let name = loss.rawValue + (chunk.map { " chunk \($0)" } ?? "") + (format == .fp32 ? "" : " \(format)")
                + (simOutput == .keep ? " keep" : "")
            var optimizer = OptimizerSettings()
            optimizer.stateFormat = format
            var spec = try Trainer.resolvedSpec(options.spec, schema: source.schema)
            spec.loss = loss
            spec.beta = loss.defaultBeta
            spec.nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity)!
            let ledger = Ledger(eventCapacity: 1 << 20)
            let network = Network(spec: spec, seed: 1, optimizer: optimizer, ledger: ledger)
            network.chunkSize = chunk
            network.keepsSimOutput = simOutput == .keep
            let config = LoaderConfig(batchSize: options.batchSize, seed: 1, augment: .fashionMNIST,
                                      mean: Normalization.fashionMNIST.mean, std: Normalization.fashionMNIST.std)
            let loader = try BatchLoader(source: source, config: config, ledger: ledger)
            var epoch = 0
            loader.startEpoch(epoch)
            var step = 0
            func oneStep() throws {
                ledger.enter(.load)
                var batch = try StepProfiler.measure(.load, layer: StepProfiler.loader) { try loader.nextBatch() }
                if batch == nil || batch!.count < options.batchSize {
                    epoch += 1
                    loader.startEpoch(epoch)
                    batch = try StepProfiler.measure(.load, layer: StepProfiler.loader) { try loader.nextBatch() }
                }
                let b = batch!
                let images = Tensor(storage: b.images, shape: [b.count, b.channels, b.height, b.width])
                _ = network.trainStep(images: images, labels: b.labels.pointer, lr: 1e-4, step: step)
                step += 1
            }
            for _ in 0..<options.warmup { try oneStep() }  // warm-up: first-touch of buffers, BLAS threads
            var rates: [Double] = []
            var phaseTimes: [[String: Double]] = []
            var gemmRates: [Double] = []
            let probe = GEMMProbe()
            StepProfiler.reset()
            var profiledSeconds = 0.0
            for _ in 0..<options.repeats {
                ledger.clearEvents()
                StepProfiler.enable(options.breakdown)
                let start = BenchmarkClock.now()
                for _ in 0..<options.steps { try oneStep() }
                let seconds = BenchmarkClock.now() - start
                StepProfiler.enable(false)
                profiledSeconds += seconds
                rates.append(Double(options.steps * options.batchSize) / seconds)
                phaseTimes.append(phaseSeconds(ledger.history().events, steps: options.steps))
                gemmRates.append(probe.gflops())
            }
            let median = BenchmarkClock.median(rates)
            let medianIndex = rates.firstIndex(of: rates.sorted()[rates.count / 2])!
            let flop = flopPerSample(spec)
            results.append(ModeResult(loss: name, samplesPerSecond: median, repeats: rates,
                                      secondsPerStepByPhase: phaseTimes[medianIndex], ledgerPeakBytes: ledger.peak().total,
                                      mflopPerSample: flop / 1e6, gflops: flop * median / 1e9,
                                      gemmGFLOPS: BenchmarkClock.median(gemmRates),
                                      breakdown: options.breakdown
                                          ? TrainingBreakdown(entries: StepProfiler.entries, steps: options.steps * options.repeats,
                                                              seconds: profiledSeconds)
                                          : nil))
            StepProfiler.reset()
            log(String(format: "%@: %.0f samples/s", name, median))
        }
        return results
    }

    /// Seconds per step spent in each phase, from the gaps between consecutive markers.
    static func phaseSeconds(_ events: [LedgerEvent], steps: Int) -> [String: Double] {
        var out: [String: Double] = [:]
        var last: LedgerEvent?
        for e in events where e.kind == .marker {
            if let l = last {
                let key = l.phase == .load || l.phase == .idle ? "load" : "\(l.phase)"
                out[key, default: 0] += Double(e.time - l.time) * 1e-9 / Double(steps)
            }
            last = e
        }
        return out
    }

    /// Multiply-adds x 2 of the GEMMs and convolutions of one training sample (forward,
    /// backward, heads).
    public static func flopPerSample(_ spec: ModelSpec) -> Double {
        var total = 0.0
        for (i, b) in spec.convBlocks.enumerated() {
            let conv = 2.0 * Double(b.inChannels * 9 * b.outChannels * b.height * b.width)
            // forward, backward-weights, and backward-data except for the first block in local mode
            total += conv * (spec.loss.isLocal || i == 0 ? 2 : 3)
            if spec.loss.isLocal && spec.loss.usesSim && !spec.loss.isBackpropFree {
                total += 3 * 2.0 * Double(b.outChannels * 9 * b.outChannels * b.height * b.width)
            }
        }
        var inFeatures = Double(spec.linearInputFeatures)
        let h = Double(spec.numHidden), k = Double(spec.classes)
        for i in 0..<spec.linearBlockCount {
            // forward x W^T, dW = dz^T x, and dx in backprop mode (not for the first block)
            total += 2 * inFeatures * h * (spec.loss.isLocal || (i == 0 && spec.convBlocks.isEmpty) ? 2 : 3)
            if spec.loss.isLocal {
                if spec.loss.usesPred { total += 2 * h * (spec.loss.isBackpropFree ? 128 : k) * 3 }
                if spec.loss.usesSim && !spec.loss.isBackpropFree { total += 2 * h * h * 3 }
            }
            inFeatures = h
        }
        total += 2 * inFeatures * k * (spec.loss.isLocal ? 2 : 3)
        return total
    }
}

/// The GEMMs that carry ~90% of an mlp 3x1024 step's FLOPs, as the step issues them:
/// y = h W^T (128,1024)(1024,1024)^T, dW = dY^T h (1024,128)(128,1024), dh = dY W
/// (128,1024)(1024,1024). Timed back to back on buffers outside the ledger.
struct GEMMProbe {
    let shapes = FoundationBenchmark.shapes.filter { $0.k == 1024 && $0.n == 1024 && $0.m == 128 || $0.m == 1024 && $0.n == 1024 && $0.k == 128 }
    let buffers: [(a: RawFloats, b: RawFloats, c: RawFloats)]

    init() {
        buffers = shapes.map { s in
            let a = RawFloats(count: s.m * s.k), b = RawFloats(count: s.k * s.n), c = RawFloats(count: s.m * s.n)
            FoundationBenchmark.fillDeterministic(a.buffer, seed: 1)
            FoundationBenchmark.fillDeterministic(b.buffer, seed: 2)
            c.buffer.update(repeating: 0)
            return (a, b, c)
        }
        _ = gflops()  // warm up
    }

    /// GFLOP/s of three passes over the shapes.
    func gflops() -> Double {
        var flops = 0.0
        let seconds = BenchmarkClock.time {
            for _ in 0..<3 {
                for (s, buf) in zip(shapes, buffers) {
                    BLAS.gemm(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, a: buf.a.pointer, lda: s.storedA[1],
                              b: buf.b.pointer, ldb: s.storedB[1], c: buf.c.pointer, ldc: s.n)
                    flops += 2.0 * Double(s.m * s.n * s.k)
                }
            }
        }
        return flops / seconds / 1e9
    }
}
