#if canImport(Glibc)
import Glibc
#endif
import MemoryLedger
import Tensors

/// One step shaped like the MLP's (batch 128, 784 -> 3 x 1024 hidden, 10 classes, a local head
/// per layer): allocate the step's activation-sized buffers, fill them, run the three forward
/// GEMMs, free. Measured through `Tensor` on a ledger and with plain posix_memalign buffers, to
/// show what booking every buffer costs where it matters.
struct TrainingLikeStep {
    static let batch = 128
    /// What a local-learning step allocates, per step: the input, per layer the pre-activation,
    /// activation, head output, similarity matrix and its target, and the activation gradient,
    /// and the output logits.
    static let activationShapes: [(shape: [Int], category: Category, layer: Int?)] = {
        var shapes: [(shape: [Int], category: Category, layer: Int?)] = [([batch, 784], .input, nil)]
        for layer in 0..<3 {
            shapes += [([batch, 1024], .activations, layer), ([batch, 1024], .activations, layer),
                       ([batch, 10], .activations, layer), ([batch, batch], .lossTemp, layer),
                       ([batch, batch], .lossTemp, layer), ([batch, 1024], .activationGrads, layer)]
        }
        shapes.append(([batch, 10], .activations, 3))
        return shapes
    }()
    static let weightShapes = [[1024, 784], [1024, 1024], [1024, 1024]]

    /// Seconds per step (median of `repeats`), tracked and untracked, interleaved, and the minor
    /// page faults per step of each (fresh pages the kernel had to zero-fill).
    func measure(repeats: Int, secondsPerRepeat: Double) -> (tracked: Double, untracked: Double, trackedFaults: Double, untrackedFaults: Double) {
        let ledger = Ledger()
        let trackedWeights = Self.weightShapes.enumerated().map { layer, shape -> Tensor in
            let w = Tensor(shape, .weights, layer: layer, label: "bench.weight", ledger: ledger)
            FoundationBenchmark.fillDeterministic(w.buffer, seed: UInt64(layer))
            return w
        }
        let rawWeights = trackedWeights.map { w -> RawFloats in
            let r = RawFloats(count: w.count)
            _ = r.buffer.update(fromContentsOf: w.buffer)
            return r
        }
        let tracked = { trackedStep(ledger, trackedWeights) }
        let untracked = { untrackedStep(rawWeights) }
        tracked(); untracked()
        let steps = BenchmarkClock.iterations(toFill: secondsPerRepeat, untracked)
        var trackedTimes: [Double] = [], untrackedTimes: [Double] = []
        var faults = [true: 0, false: 0]
        for r in 0..<repeats {
            for useTracked in (r % 2 == 0 ? [true, false] : [false, true]) {
                let faultsBefore = Self.minorFaults()
                let t = BenchmarkClock.time { for _ in 0..<steps { useTracked ? tracked() : untracked() } } / Double(steps)
                faults[useTracked, default: 0] += Self.minorFaults() - faultsBefore
                if useTracked { trackedTimes.append(t) } else { untrackedTimes.append(t) }
            }
        }
        let perStep = Double(repeats * steps)
        return (BenchmarkClock.median(trackedTimes), BenchmarkClock.median(untrackedTimes),
                Double(faults[true]!) / perStep, Double(faults[false]!) / perStep)
    }

    static func minorFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_minflt)
    }

    private func trackedStep(_ ledger: Ledger, _ weights: [Tensor]) {
        var tensors: [Tensor] = []
        tensors.reserveCapacity(Self.activationShapes.count)
        for (shape, category, layer) in Self.activationShapes {
            let t = Tensor(shape, category, layer: layer, label: "bench.step", ledger: ledger, zeroed: false)
            t.fill(0.01)
            tensors.append(t)
        }
        // x is tensors[0]; layer l's pre-activation is tensors[1 + 6l], its activation tensors[2 + 6l].
        var input = tensors[0]
        for layer in 0..<3 {
            BLAS.gemm(input, weights[layer], into: tensors[1 + 6 * layer], transposeB: true)
            input = tensors[2 + 6 * layer]
        }
    }

    private func untrackedStep(_ weights: [RawFloats]) {
        var buffers: [RawFloats] = []
        buffers.reserveCapacity(Self.activationShapes.count)
        for (shape, _, _) in Self.activationShapes {
            let b = RawFloats(count: shape.reduce(1, *))
            b.buffer.update(repeating: 0.01)
            buffers.append(b)
        }
        var input = buffers[0], k = 784
        for layer in 0..<3 {
            BLAS.gemm(transA: false, transB: true, m: Self.batch, n: 1024, k: k, a: input.pointer, lda: k,
                      b: weights[layer].pointer, ldb: k, c: buffers[1 + 6 * layer].pointer, ldc: 1024)
            input = buffers[2 + 6 * layer]
            k = 1024
        }
    }
}
