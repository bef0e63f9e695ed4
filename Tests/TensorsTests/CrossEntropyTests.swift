import Foundation
import NumericTestSupport
import Tensors
import XCTest

/// Softmax cross-entropy (mean over the batch) and sigmoid binary cross-entropy with logits.
final class CrossEntropyTests: XCTestCase {
    /// logits [[1, 2, 3], [1, 0, -1]], labels [2, 1]:
    /// row 0: log(e^1 + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2); row 1: log(e + 1 + e^-1) - 0.
    /// Row 0's argmax (2) is its label, row 1's (0) is not: one correct.
    func testTwoByThreeLossByHand() {
        let logits = makeTensor([2, 3], [1, 2, 3, 1, 0, -1])
        let labels: [Int32] = [2, 1]
        let e = M_E
        let expected = (Foundation.log(1 + 1 / e + 1 / (e * e)) + Foundation.log(e + 1 + 1 / e)) / 2
        XCTAssertEqual(expected, 0.9076059644, accuracy: 1e-9)  // the hand value, written out
        let (loss, correct) = labels.withUnsafeBufferPointer {
            CrossEntropy.lossAndGrad(logits: logits, labels: $0.baseAddress!, grad: nil)
        }
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-6)
        XCTAssertEqual(correct, 1)
        XCTAssertEqual(CrossEntropy.argmax(logits, row: 0), 2)
        XCTAssertEqual(CrossEntropy.argmax(logits, row: 1), 0)
    }

    func testLossMatchesReferenceAndIsStableForLargeLogits() {
        var random = TestRandom(seed: 81)
        let x = random.uniform(5 * 4, -3, 3).enumerated().map { $0.offset == 7 ? 1000 : ($0.offset == 13 ? -1000 : $0.element) }
        let labels = random.labels(5, classes: 4)
        let loss = labels.withUnsafeBufferPointer {
            CrossEntropy.lossAndGrad(logits: makeTensor([5, 4], x), labels: $0.baseAddress!, grad: nil).loss
        }
        XCTAssertTrue(loss.isFinite)
        XCTAssertEqual(Double(loss), Reference.crossEntropy(x, labels: labels), accuracy: 1e-4)
    }

    /// grad = scale * d(CE)/d(logits), with the mean's divisor from `normalizer` when given,
    /// also when grad aliases the logits (as the heads call it).
    func testGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 82)
        let (batch, classes) = (5, 4)
        let x = random.uniform(batch * classes, -2, 2), labels = random.labels(batch, classes: classes)
        let scale = 0.6
        for normalizer in [nil, 8] {
            let divisor = Double(normalizer ?? batch) / Double(batch)
            let numeric = numericalGradient(at: x) { scale * Reference.crossEntropy($0, labels: labels) / divisor }
            let logits = makeTensor([batch, classes], x), grad = zeros([batch, classes])
            let loss = labels.withUnsafeBufferPointer {
                CrossEntropy.lossAndGrad(logits: logits, labels: $0.baseAddress!, grad: grad, scale: Float(scale), normalizer: normalizer).loss
            }
            XCTAssertEqual(Double(loss), Reference.crossEntropy(x, labels: labels) / divisor, accuracy: 1e-5, "loss is unscaled, divided by normalizer")
            assertGradientsMatch(grad.doubles, numeric, "CE grad, normalizer \(String(describing: normalizer))")
            assertMutationDetected(grad.doubles, numeric, "CE grad")

            let aliased = makeTensor([batch, classes], x)
            _ = labels.withUnsafeBufferPointer {
                CrossEntropy.lossAndGrad(logits: aliased, labels: $0.baseAddress!, grad: aliased, scale: Float(scale), normalizer: normalizer)
            }
            assertGradientsMatch(aliased.doubles, numeric, "CE grad in place")
        }
    }
}

final class BinaryCrossEntropyTests: XCTestCase {
    /// x = +-100 against t = 0, 1: losses 0, 100, 100, 0 (mean 50); gradients (sigmoid - t)/4 =
    /// 0, 1/4, -1/4, 0. A naive log(sigmoid(x)) gives inf or nan here.
    func testStableForLogitsOfMagnitudeHundred() {
        let logits = makeTensor([2, 2], [100, 100, -100, -100]), targets = makeTensor([2, 2], [1, 0, 1, 0])
        let grad = zeros([2, 2])
        let loss = BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: grad)
        XCTAssertEqual(Double(loss), 50, accuracy: 1e-5)
        assertClose(grad.doubles, [0, 0.25, -0.25, 0], tolerance: 1e-7, "BCE grad at |x| = 100")
    }

    func testLossMatchesReference() {
        var random = TestRandom(seed: 91)
        let x = random.uniform(4 * 6, -4, 4)
        let t = random.uniform(4 * 6, 0, 1).map { $0 < 0.5 ? 0.0 : 1.0 }
        let loss = BinaryCrossEntropy.lossAndGrad(logits: makeTensor([4, 6], x), targets: makeTensor([4, 6], t), grad: nil)
        XCTAssertEqual(Double(loss), Reference.binaryCrossEntropy(x, targets: t), accuracy: 1e-5)
    }

    func testGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 92)
        let x = random.uniform(4 * 6, -3, 3)
        let t = random.uniform(4 * 6, 0, 1).map { $0 < 0.5 ? 0.0 : 1.0 }
        let scale = 0.3
        for normalizer in [nil, 6] {
            let divisor = Double(normalizer ?? 4) / 4
            let numeric = numericalGradient(at: x) { scale * Reference.binaryCrossEntropy($0, targets: t) / divisor }
            let logits = makeTensor([4, 6], x)
            BinaryCrossEntropy.lossAndGrad(logits: logits, targets: makeTensor([4, 6], t), grad: logits, scale: Float(scale), normalizer: normalizer)
            assertGradientsMatch(logits.doubles, numeric, "BCE grad (in place), normalizer \(String(describing: normalizer))")
            assertMutationDetected(logits.doubles, numeric, "BCE grad")
        }
    }
}
