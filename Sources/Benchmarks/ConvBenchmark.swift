import MemoryLedger
import Tensors

/// The timing of one pass at one shape: the median over the repeats.
public struct ConvBenchResult: Sendable, CustomStringConvertible {
    public var geometry: ConvGeometry
    public var batch: Int
    public var pass: ConvPass
    public var threads: Int
    /// Median wall time of one call over the whole batch.
    public var seconds: Double
    /// `geometry.flops(batch:)` / seconds / 1e9.
    public var gflops: Double
    public var workspaceBytes: Int
    public var imagesPerGemm: Int
    public var engine: ConvEngine = .im2col

    public var description: String {
        let pass = self.pass.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0)
        let ms = (seconds * 1000 * 100).rounded() / 100
        let rate = (gflops * 10).rounded() / 10
        return "\(engine.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)) \(geometry) B\(batch) G\(imagesPerGemm) \(pass) \(ms) ms  \(rate) GFLOP/s  ws \(workspaceBytes >> 10) KiB"
    }
}

/// Times the three conv passes (release builds only give meaningful figures). Callable from the
/// CLI's bench command; buffers are booked in a private ledger, so the run leaves the shared
/// ledger untouched.
public enum ConvBenchmark {
    /// vgg8b's convolutions on 28x28 inputs: 1->128 and 128->256 at 28x28, 256->256 and
    /// 256->512 at 14x14, 512->512 at 7x7 and 3x3.
    public static let vgg8bShapes: [ConvGeometry] = [
        ConvGeometry(inChannels: 1, outChannels: 128, height: 28, width: 28),
        ConvGeometry(inChannels: 128, outChannels: 256, height: 28, width: 28),
        ConvGeometry(inChannels: 256, outChannels: 256, height: 14, width: 14),
        ConvGeometry(inChannels: 256, outChannels: 512, height: 14, width: 14),
        ConvGeometry(inChannels: 512, outChannels: 512, height: 7, width: 7),
        ConvGeometry(inChannels: 512, outChannels: 512, height: 3, width: 3),
    ]

    /// The sim heads' convolutions of vgg8b that are not also a block's shape: C -> C at the
    /// block's resolution (128 and 256 at 28x28, 512 at 14x14; 256 at 14x14 and 512 at 7x7 and
    /// 3x3 are in `vgg8bShapes`).
    public static let vgg8bSimHeadShapes: [ConvGeometry] = [
        ConvGeometry(inChannels: 128, outChannels: 128, height: 28, width: 28),
        ConvGeometry(inChannels: 256, outChannels: 256, height: 28, width: 28),
        ConvGeometry(inChannels: 512, outChannels: 512, height: 14, width: 14),
    ]

    /// Median of `repeats` timed calls (after one warm-up call) of each pass at each shape, with
    /// the BLAS set to `threads` threads (restored afterwards). `imagesPerGemm` overrides the
    /// workspace's default grouping (for tuning).
    public static func run(shapes: [ConvGeometry] = vgg8bShapes, batch: Int = 32, threads: Int = 2,
                           repeats: Int = 3, passes: [ConvPass] = ConvPass.allCases,
                           imagesPerGemm: Int? = nil, engines: [ConvEngine] = [.default]) -> [ConvBenchResult] {
        let previousThreads = BLAS.threads
        BLAS.setThreads(threads)
        defer { BLAS.setThreads(previousThreads) }
        let ledger = Ledger(layerCapacity: 4, eventCapacity: 0)
        var results: [ConvBenchResult] = []
        for g in shapes {
            func filled(_ shape: [Int], _ category: Category, _ label: StaticString, seed: Int) -> Tensor {
                let t = Tensor(shape, category, label: label, ledger: ledger, zeroed: false)
                let p = t.pointer
                // Cheap deterministic values in [-1, 1); their content does not affect timing.
                for i in 0..<t.count { p[i] = Float((i &* 7919 &+ seed) % 2001) / 1000 - 1 }
                return t
            }
            let x = filled(g.inputShape(batch: batch), .activations, "bench x", seed: 1)
            let w = filled(g.weightShape, .weights, "bench w", seed: 2)
            let b = filled([g.outChannels], .weights, "bench b", seed: 3)
            let y = Tensor(g.outputShape(batch: batch), .activations, label: "bench y", ledger: ledger)
            let dy = filled(g.outputShape(batch: batch), .activationGrads, "bench dy", seed: 4)
            let dx = Tensor(g.inputShape(batch: batch), .activationGrads, label: "bench dx", ledger: ledger)
            let dw = Tensor(g.weightShape, .gradients, label: "bench dw", ledger: ledger)
            let db = Tensor([g.outChannels], .gradients, label: "bench db", ledger: ledger)
            for engine in engines {
            let workspace = ConvWorkspace(g, imagesPerGemm: imagesPerGemm, engine: engine, ledger: ledger)
            for pass in passes {
                let call: () -> Void
                switch pass {
                case .forward:
                    call = { Conv2dKernel.forward(x: x, weight: w, bias: b, into: y, workspace: workspace) }
                case .backwardData:
                    call = { Conv2dKernel.backwardData(dy: dy, weight: w, into: dx, workspace: workspace) }
                case .backwardWeights:
                    call = { Conv2dKernel.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: db, workspace: workspace) }
                }
                call()
                var times: [Double] = []
                for _ in 0..<max(1, repeats) {
                    let clock = ContinuousClock()
                    let start = clock.now
                    call()
                    let elapsed = clock.now - start
                    times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                }
                times.sort()
                let median = times[times.count / 2]
                results.append(ConvBenchResult(geometry: g, batch: batch, pass: pass, threads: threads, seconds: median,
                                               gflops: g.flops(batch: batch) / median / 1e9,
                                               workspaceBytes: workspace.byteCount,
                                               imagesPerGemm: workspace.imagesPerGemm, engine: engine))
            }
            }
        }
        return results
    }
}
