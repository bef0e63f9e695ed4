import Foundation
import NumericTestSupport
import Tensors
import XCTest

/// Rounding models of CrossEntropy.swift's computation (`Rounded`): exp and log evaluated in
/// Double and rounded to Float (within 2u of the result: glibc's exp and log are within 1 ulp
/// of Double), sums over K classes, the loss summed over rows in Double and rounded once.
/// An error in a shifted logit z - max moves exp(z - max) by a relative e^e - 1 and log(s) by
/// -log(1 - e_s / s): `Rounded.exp` and `Rounded.log` carry these through.
enum CrossEntropyModel {
    /// (loss, grad) for logits (B, K), with the kernel's `scale` and `normalizer`.
    static func softmax(_ x: [Double], labels: [Int32], scale: Double = 1, normalizer: Int? = nil) -> (loss: Rounded, grad: [Rounded]) {
        let batch = labels.count, classes = x.count / batch
        let denominator = Rounded(exact: Double(normalizer ?? batch))
        let f = Rounded(exact: scale) / denominator
        var total = Rounded(exact: 0), grad: [Rounded] = []
        for r in 0..<batch {
            let row = Array(x[(r * classes)..<((r + 1) * classes)])
            let maxValue = Rounded(exact: row.max()!)
            let shifted = row.map { Rounded(exact: $0) - maxValue }
            let logSum = Rounded.sum(shifted.map { $0.exp() }).log()
            let label = Int(labels[r])
            let term = logSum - shifted[label]
            // Summed in Double: its rounding (B u64) is below what one Float rounding counts.
            total = Rounded(exact: total.exact + term.exact, error: total.error + term.error)
            var g = shifted.map { ($0 - logSum).exp() * f }
            g[label] = g[label] - f
            grad += g
        }
        return (Rounded.roundedOnce(total.exact).adding(error: total.error) / denominator, grad)
    }

    /// (loss, grad) of sigmoid binary cross-entropy with targets 0 or 1.
    static func binary(_ x: [Double], targets t: [Double], rows: Int, scale: Double = 1, normalizer: Int? = nil) -> (loss: Rounded, grad: [Rounded]) {
        let denominator = Rounded(exact: Double((normalizer ?? rows) * (x.count / rows)))
        let f = Rounded(exact: scale) / denominator
        var total = Rounded(exact: 0), grad: [Rounded] = []
        for (v, target) in zip(x, t) {
            // max(v, 0) - v t + log(1 + exp(-|v|))
            let term = (Rounded(exact: max(v, 0)) - Rounded(exact: v) * Rounded(exact: target))
                + (Rounded(exact: 1) + Rounded(exact: -abs(v)).exp()).log()
            total = Rounded(exact: total.exact + term.exact, error: total.error + term.error)
            let sigmoid = Rounded(exact: 1) / (Rounded(exact: 1) + Rounded(exact: -v).exp())
            grad.append((sigmoid - Rounded(exact: target)) * f)
        }
        return (Rounded.roundedOnce(total.exact).adding(error: total.error) / denominator, grad)
    }
}

extension Rounded {
    /// This value with `error` more.
    func adding(error more: Double) -> Rounded { Rounded(exact: exact, error: error + more * (1 + Rounded.u)) }
}

/// Softmax cross-entropy (mean over the batch) and sigmoid binary cross-entropy with logits.
final class CrossEntropyTests: XCTestCase {
    /// logits [[1, 2, 3], [1, 0, -1]], labels [2, 1]:
    /// row 0: log(e^1 + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2); row 1: log(e + 1 + e^-1) - 0.
    /// Row 0's argmax (2) is its label, row 1's (0) is not: one correct.
    func testTwoByThreeLossByHand() {
        let values: [Double] = [1, 2, 3, 1, 0, -1]
        let logits = makeTensor([2, 3], values)
        let labels: [Int32] = [2, 1]
        let e = M_E
        let expected = (Foundation.log(1 + 1 / e + 1 / (e * e)) + Foundation.log(e + 1 + 1 / e)) / 2
        XCTAssertEqual(expected, 0.9076059644, accuracy: 1e-9)  // the hand value, written out
        let model = CrossEntropyModel.softmax(values, labels: labels)
        XCTAssertEqual(model.loss.exact, expected, accuracy: 1e-15, "the model's exact loss is the hand value")
        let (loss, correct) = labels.withUnsafeBufferPointer {
            CrossEntropy.lossAndGrad(logits: logits, labels: $0.baseAddress!, grad: nil)
        }
        assertWithinBound(Double(loss), model.loss, "loss")
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
        let model = CrossEntropyModel.softmax(x, labels: labels)
        XCTAssertEqual(model.loss.exact, Reference.crossEntropy(x, labels: labels), accuracy: 1e-12)
        assertWithinBound(Double(loss), model.loss, "loss")
    }

    /// grad = scale * d(CE)/d(logits), with the mean's divisor from `normalizer` when given,
    /// also when grad aliases the logits (as the heads call it). The kernel against the model;
    /// the model's exact gradient (softmax - onehot) scaled against finite differences of the
    /// Float64 reference in their metric: |f'''| <= 1 per unit of scale for softmax CE, one
    /// evaluation ~10 B K operations on magnitudes < 10.
    func testGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 82)
        let (batch, classes) = (5, 4)
        let x = random.uniform(batch * classes, -2, 2), labels = random.labels(batch, classes: classes)
        let scale = Double(Float(0.6))
        let fd = FiniteDifference.bound(step: 1e-6, thirdDerivative: 1, terms: 10 * batch * classes, absoluteSum: 10)
        for normalizer in [nil, 8] {
            let divisor = Double(normalizer ?? batch) / Double(batch)
            let model = CrossEntropyModel.softmax(x, labels: labels, scale: scale, normalizer: normalizer)
            let numeric = numericalGradient(at: x) { scale * Reference.crossEntropy($0, labels: labels) / divisor }
            FiniteDifference.assertMatches(model.grad.map(\.exact), numeric, bound: fd, "CE grad formula, normalizer \(String(describing: normalizer))")
            let logits = makeTensor([batch, classes], x), grad = zeros([batch, classes])
            let loss = labels.withUnsafeBufferPointer {
                CrossEntropy.lossAndGrad(logits: logits, labels: $0.baseAddress!, grad: grad, scale: Float(scale), normalizer: normalizer).loss
            }
            // The loss is unscaled, divided by the normalizer.
            assertWithinBound(Double(loss), CrossEntropyModel.softmax(x, labels: labels, normalizer: normalizer).loss, "loss")
            assertWithinBound(grad.doubles, model.grad, "CE grad, normalizer \(String(describing: normalizer))")
            // Broken variant: softmax without the one-hot subtracted at the label.
            let noOneHot = model.grad.enumerated().map { i, g in g.exact + (Int(labels[i / classes]) == i % classes ? scale / Double(normalizer ?? batch) : 0) }
            assertBoundCatches(noOneHot, model.grad, "CE grad without the one-hot")

            let aliased = makeTensor([batch, classes], x)
            _ = labels.withUnsafeBufferPointer {
                CrossEntropy.lossAndGrad(logits: aliased, labels: $0.baseAddress!, grad: aliased, scale: Float(scale), normalizer: normalizer)
            }
            assertWithinBound(aliased.doubles, model.grad, "CE grad in place")
        }
    }
}

final class BinaryCrossEntropyTests: XCTestCase {
    /// x = +-100 against t = 0, 1: losses 0, 100, 100, 0 (mean 50); gradients (sigmoid - t)/4 =
    /// 0, 1/4, -1/4, 0. A naive log(sigmoid(x)) gives inf or nan here.
    func testStableForLogitsOfMagnitudeHundred() {
        let x: [Double] = [100, 100, -100, -100], t: [Double] = [1, 0, 1, 0]
        let logits = makeTensor([2, 2], x), targets = makeTensor([2, 2], t)
        let grad = zeros([2, 2])
        let loss = BinaryCrossEntropy.lossAndGrad(logits: logits, targets: targets, grad: grad)
        let model = CrossEntropyModel.binary(x, targets: t, rows: 2)
        XCTAssertEqual(model.loss.exact, 50, accuracy: 1e-40, "the hand value (log(1 + e^-100) ~ 4e-44)")
        XCTAssertNil(RoundingBound.violation(model.grad.map(\.exact), [0, 0.25, -0.25, 0].map { Rounded(exact: $0, error: 1e-40) }),
                     "the hand values (to e^-100)")
        assertWithinBound(Double(loss), model.loss, "BCE loss at |x| = 100")
        assertWithinBound(grad.doubles, model.grad, "BCE grad at |x| = 100")
    }

    func testLossMatchesReference() {
        var random = TestRandom(seed: 91)
        let x = random.uniform(4 * 6, -4, 4)
        let t = random.uniform(4 * 6, 0, 1).map { $0 < 0.5 ? 0.0 : 1.0 }
        let loss = BinaryCrossEntropy.lossAndGrad(logits: makeTensor([4, 6], x), targets: makeTensor([4, 6], t), grad: nil)
        let model = CrossEntropyModel.binary(x, targets: t, rows: 4)
        XCTAssertEqual(model.loss.exact, Reference.binaryCrossEntropy(x, targets: t), accuracy: 1e-12)
        assertWithinBound(Double(loss), model.loss, "BCE loss")
        // Broken variant: the targets flipped in one entry (a wrong index into t).
        var oneFlipped = t
        oneFlipped[5] = 1 - oneFlipped[5]
        assertBoundCatches([Reference.binaryCrossEntropy(x, targets: oneFlipped)], [model.loss], "BCE with one target read wrong")
    }

    /// The kernel against the model; the model's exact (sigmoid - t) scaled against finite
    /// differences (|f'''| <= 0.1 per unit of scale for the logistic loss).
    func testGradientMatchesFiniteDifferences() {
        var random = TestRandom(seed: 92)
        let x = random.uniform(4 * 6, -3, 3)
        let t = random.uniform(4 * 6, 0, 1).map { $0 < 0.5 ? 0.0 : 1.0 }
        let scale = Double(Float(0.3))
        let fd = FiniteDifference.bound(step: 1e-6, thirdDerivative: 1, terms: 10 * x.count, absoluteSum: 10 * 4)
        for normalizer in [nil, 6] {
            let divisor = Double(normalizer ?? 4) / 4
            let model = CrossEntropyModel.binary(x, targets: t, rows: 4, scale: scale, normalizer: normalizer)
            let numeric = numericalGradient(at: x) { scale * Reference.binaryCrossEntropy($0, targets: t) / divisor }
            FiniteDifference.assertMatches(model.grad.map(\.exact), numeric, bound: fd, "BCE grad formula, normalizer \(String(describing: normalizer))")
            let logits = makeTensor([4, 6], x)
            BinaryCrossEntropy.lossAndGrad(logits: logits, targets: makeTensor([4, 6], t), grad: logits, scale: Float(scale), normalizer: normalizer)
            assertWithinBound(logits.doubles, model.grad, "BCE grad (in place), normalizer \(String(describing: normalizer))")
        }
    }
}
