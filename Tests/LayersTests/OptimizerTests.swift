import Layers
import MemoryLedger
import NumericTestSupport
import XCTest

/// Adam and SGD (PyTorch semantics) against updates worked out by hand for two steps.
final class OptimizerTests: XCTestCase {
    private func parameter(_ values: [Float]) -> Parameter {
        let p = Parameter(name: "p", shape: [values.count], category: .weights, layer: 0, label: "p", ledger: .shared)
        p.value.copy(from: values)
        return p
    }

    private func step(_ optimizer: Optimizer, _ p: Parameter, grad: [Float], lr: Float) {
        p.makeGrad().copy(from: grad)
        optimizer.step(lr: lr)
        p.dropGrad()
    }

    // MARK: rounding models of the updates
    //
    // Each update is a short chain of correctly rounded Float32 operations per element (no sums,
    // no order to vary): modelled operation by operation in the optimizer's order (`Rounded`),
    // every constant (lr, betas, eps, momentum, weight decay) a Float within u of its value. The
    // hand-worked values below are the models' exact values (`assertHandValues`); the kernels'
    // results must be within the models' bounds (a few u of the values).

    /// Adam elementwise, `steps` steps of (g, lr); returns w, m, v.
    private func adamModel(w0: Double, grads: [Double], lr: Double, weightDecay: Double = 0)
        -> (w: Rounded, m: Rounded, v: Rounded) {
        let b1 = Rounded.constant(0.9), b2 = Rounded.constant(0.999), eps = Rounded.constant(1e-8), one = Rounded(exact: 1)
        var w = Rounded(exact: w0), m = Rounded(exact: 0), v = Rounded(exact: 0)
        var b1Power = one, b2Power = one
        for g in grads {
            b1Power = b1Power * b1
            b2Power = b2Power * b2
            let stepSize = Rounded.constant(lr) / (one - b1Power), invSqrtBc2 = one / (one - b2Power).squareRoot()
            let gi = weightDecay == 0 ? Rounded(exact: g) : Rounded(exact: g) + Rounded.constant(weightDecay) * w
            m = b1 * m + (one - b1) * gi
            v = b2 * v + (one - b2) * gi * gi
            w = w - stepSize * m / (v.squareRoot() * invSqrtBc2 + eps)
        }
        return (w, m, v)
    }

    /// SGD with momentum mu (buf = g on the first step), elementwise; returns w.
    private func sgdModel(w0: Double, grads: [Double], lr: Double, momentum: Double, weightDecay: Double = 0) -> Rounded {
        var w = Rounded(exact: w0), buf = Rounded(exact: 0)
        for (t, g) in grads.enumerated() {
            let gi = weightDecay == 0 ? Rounded(exact: g) : Rounded(exact: g) + Rounded.constant(weightDecay) * w
            buf = t == 0 ? gi : Rounded.constant(momentum) * buf + gi
            w = w - Rounded.constant(lr) * buf
        }
        return w
    }

    /// The hand-worked values are the model's exact values, to their 10 significant digits and
    /// up to Adam's eps, which the hand computation leaves out (lr eps / sqrt(v-hat) < 1e-8 here).
    private func assertHandValues(_ hand: [Double], _ model: [Rounded], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNil(RoundingBound.violation(hand, model.map { Rounded(exact: $0.exact, error: 1e-8 * max(1, abs($0.exact))) }),
                     "\(what): hand values vs model", file: file, line: line)
    }

    /// lr 0.1, betas (0.9, 0.999), eps 1e-8. Element 0: w = 1, g = 0.5 then -0.25.
    /// Step 1: m = 0.05, v = 0.00025, m-hat = 0.5, v-hat = 0.25: w = 1 - 0.1 * 0.5 / 0.5 = 0.9.
    /// Step 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
    /// m-hat = 0.02 / 0.19, v-hat = 0.00031225 / 0.001999: w = 0.9 - 0.1 * 0.1052632 / 0.3952254 = 0.8733663.
    func testAdamTwoStepsByHand() {
        let p = parameter([1, -0.5, 0.25])
        let adam = Optimizer([p], settings: OptimizerSettings(), ledger: .shared)
        let w0 = [1.0, -0.5, 0.25], g1 = [0.5, -2, 0], g2 = [-0.25, 1, 0.125]
        step(adam, p, grad: g1.map { Float($0) }, lr: 0.1)
        let model1 = w0.indices.map { adamModel(w0: w0[$0], grads: [g1[$0]], lr: 0.1) }
        assertHandValues([0.9, -0.4, 0.25], model1.map(\.w), "Adam step 1")
        assertWithinBound(p.value.doubles, model1.map(\.w), "Adam step 1")
        step(adam, p, grad: g2.map { Float($0) }, lr: 0.1)
        let model2 = w0.indices.map { adamModel(w0: w0[$0], grads: [g1[$0], g2[$0]], lr: 0.1) }
        assertHandValues([0.8733662987, -0.3733662967, 0.1755863261], model2.map(\.w), "Adam step 2")
        assertWithinBound(p.value.doubles, model2.map(\.w), "Adam step 2")
        XCTAssertEqual(adam.stepCount, 2)
        // The moments are kept in the parameter's state: m, v.
        assertHandValues([0.02, -0.08, 0.0125], model2.map(\.m), "Adam m")
        assertWithinBound(p.state[0].fp32!.doubles, model2.map(\.m), "Adam m")
        assertHandValues([0.00031225, 0.004996, 0.000015625], model2.map(\.v), "Adam v")
        assertWithinBound(p.state[1].fp32!.doubles, model2.map(\.v), "Adam v")
        // Broken variant: the second step without the bias correction of m and v.
        let uncorrected = w0.indices.map { i -> Double in
            let m = 0.02 * [1, -4, 0.625][i], v = [0.00031225, 0.004996, 0.000015625][i]
            return model1[i].w.exact - 0.1 * m / (v.squareRoot() + 1e-8)
        }
        assertBoundCatches(uncorrected, model2.map(\.w), "Adam step 2 without bias correction")
    }

    /// SGD, momentum 0.9, lr 0.1: buf = g on the first step, then 0.9 buf + g; w -= lr buf.
    /// Element 0: w = 1 - 0.05 = 0.95; buf = 0.45 - 0.25 = 0.2, w = 0.95 - 0.02 = 0.93.
    func testSgdMomentumTwoStepsByHand() {
        var settings = OptimizerSettings()
        settings.kind = .sgd
        let p = parameter([1, -0.5, 0.25])
        let sgd = Optimizer([p], settings: settings, ledger: .shared)
        let w0 = [1.0, -0.5, 0.25], g1 = [0.5, -2, 0], g2 = [-0.25, 1, 0.125]
        step(sgd, p, grad: g1.map { Float($0) }, lr: 0.1)
        let model1 = w0.indices.map { sgdModel(w0: w0[$0], grads: [g1[$0]], lr: 0.1, momentum: 0.9) }
        assertHandValues([0.95, -0.3, 0.25], model1, "SGD step 1")
        assertWithinBound(p.value.doubles, model1, "SGD step 1")
        step(sgd, p, grad: g2.map { Float($0) }, lr: 0.1)
        let model2 = w0.indices.map { sgdModel(w0: w0[$0], grads: [g1[$0], g2[$0]], lr: 0.1, momentum: 0.9) }
        assertHandValues([0.93, -0.22, 0.2375], model2, "SGD step 2")
        assertWithinBound(p.value.doubles, model2, "SGD step 2")
        // Broken variant: the second step without momentum (buf = g).
        assertBoundCatches(w0.indices.map { model1[$0].exact - 0.1 * g2[$0] }, model2, "SGD step 2 without momentum")
    }

    /// Weight decay adds wd * w to the gradient (PyTorch's coupled form): 1 - 0.1 (0.5 + 0.1) = 0.94.
    func testSgdWeightDecayWithoutMomentum() {
        var settings = OptimizerSettings()
        settings.kind = .sgd
        settings.momentum = 0
        settings.weightDecay = 0.1
        let p = parameter([1])
        let sgd = Optimizer([p], settings: settings, ledger: .shared)
        step(sgd, p, grad: [0.5], lr: 0.1)
        let model = sgdModel(w0: 1, grads: [0.5], lr: 0.1, momentum: 0, weightDecay: 0.1)
        assertHandValues([0.94], [model], "SGD with weight decay")
        assertWithinBound(Double(p.value.array[0]), model, "SGD with weight decay")
        // Broken variant: the decay left out (1 - 0.1 * 0.5 = 0.95).
        assertBoundCatches([0.95], [model], "SGD without weight decay")
    }

    func testParametersWithoutGradientAreNotUpdated() {
        let a = parameter([1, 2]), b = parameter([3, 4])
        let adam = Optimizer([a, b], settings: OptimizerSettings(), ledger: .shared)
        a.makeGrad().copy(from: [1, 1])
        adam.step(lr: 0.1)
        XCTAssertEqual(b.value.array, [3, 4])
        XCTAssertNotEqual(a.value.array, [1, 2])
    }
}
