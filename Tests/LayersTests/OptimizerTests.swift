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

    /// lr 0.1, betas (0.9, 0.999), eps 1e-8. Element 0: w = 1, g = 0.5 then -0.25.
    /// Step 1: m = 0.05, v = 0.00025, m-hat = 0.5, v-hat = 0.25: w = 1 - 0.1 * 0.5 / 0.5 = 0.9.
    /// Step 2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
    /// m-hat = 0.02 / 0.19, v-hat = 0.00031225 / 0.001999: w = 0.9 - 0.1 * 0.1052632 / 0.3952254 = 0.8733663.
    func testAdamTwoStepsByHand() {
        let p = parameter([1, -0.5, 0.25])
        let adam = Optimizer([p], settings: OptimizerSettings(), ledger: .shared)
        step(adam, p, grad: [0.5, -2, 0], lr: 0.1)
        assertClose(p.value.doubles, [0.9, -0.4, 0.25], tolerance: 1e-6, "Adam step 1")
        step(adam, p, grad: [-0.25, 1, 0.125], lr: 0.1)
        assertClose(p.value.doubles, [0.8733662987, -0.3733662967, 0.1755863261], tolerance: 1e-6, "Adam step 2")
        XCTAssertEqual(adam.stepCount, 2)
        // The moments are kept in the parameter's state: m, v.
        assertClose(p.state[0].doubles, [0.02, -0.08, 0.0125], tolerance: 1e-6, "Adam m")
        assertClose(p.state[1].doubles, [0.00031225, 0.004996, 0.000015625], tolerance: 1e-6, "Adam v")
    }

    /// SGD, momentum 0.9, lr 0.1: buf = g on the first step, then 0.9 buf + g; w -= lr buf.
    /// Element 0: w = 1 - 0.05 = 0.95; buf = 0.45 - 0.25 = 0.2, w = 0.95 - 0.02 = 0.93.
    func testSgdMomentumTwoStepsByHand() {
        var settings = OptimizerSettings()
        settings.kind = .sgd
        let p = parameter([1, -0.5, 0.25])
        let sgd = Optimizer([p], settings: settings, ledger: .shared)
        step(sgd, p, grad: [0.5, -2, 0], lr: 0.1)
        assertClose(p.value.doubles, [0.95, -0.3, 0.25], tolerance: 1e-6, "SGD step 1")
        step(sgd, p, grad: [-0.25, 1, 0.125], lr: 0.1)
        assertClose(p.value.doubles, [0.93, -0.22, 0.2375], tolerance: 1e-6, "SGD step 2")
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
        XCTAssertEqual(Double(p.value.array[0]), 0.94, accuracy: 1e-6)
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
