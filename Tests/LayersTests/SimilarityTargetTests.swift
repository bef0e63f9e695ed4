import Layers
import NumericTestSupport
import Randomness
import Tensors
import XCTest

/// The sim target S(Y) for labels [0, 1, 0, 2], K = 3: +1 where the classes agree, -1/(K-1) =
/// -1/2 where they differ (not 0: a pitfall named in DESIGN.md).
final class SimilarityTargetTests: XCTestCase {
    let labels: [Int32] = [0, 1, 0, 2]
    let byHand: [Double] = [
        1, -0.5, 1, -0.5,
        -0.5, 1, -0.5, -0.5,
        1, -0.5, 1, -0.5,
        -0.5, -0.5, -0.5, 1,
    ]

    /// The Float32 bound of one entry of S(onehot) (`BlockStepBound.relative`): rows of K = 3
    /// terms are centred (a sum of 3), normalised (a sum of 3 squares, a square root, a division)
    /// and multiplied (a dot of 3), 4 sums and 6 elementwise roundings in sequence, on terms of
    /// magnitude at most 1 (unit rows: |u_i u_j| sums to at most 1 by Cauchy-Schwarz).
    let entryBound = BlockStepBound.relative(longestSum: 3, sums: 4, elementwise: 6)

    /// The path the heads take: Similarity.forward on one-hot rows, then clamp in place.
    func testSimTargetIsMinusOneOverKMinusOneOffDiagonal() {
        let y = makeTensor([4, 3], Reference.oneHot(labels, classes: 3))
        let u = zeros([4, 3]), norms = zeros([4]), t = zeros([4, 4])
        Similarity.forward(y, normalized: u, norms: norms, raw: t)
        Similarity.clamp(t, into: t)
        // byHand is exact up to the 1e-8 added to the row norm n = sqrt(2/3): it scales every
        // entry by (n / (n + 1e-8))^2, moving it by at most 2e-8 / n = 2.45e-8.
        let normShift = 2e-8 / (2.0 / 3).squareRoot()
        assertClose(t.doubles, byHand, tolerance: entryBound + normShift, "S(onehot)")
        assertClose(HeadReference.simTarget(labels: labels, classes: 3), byHand, tolerance: 1.01 * normShift,
                    "Float64 reference target (1e-8 in the norm moves the entries by up to 2.45e-8)")
        // Broken variant: 0 instead of -1/(K - 1) off the diagonal (the pitfall DESIGN.md names).
        XCTAssertGreaterThan(maxAbs(subtract(t.doubles, byHand.map { $0 < 0 ? 0 : $0 })), entryBound + normShift)
    }

    /// Through LocalHeads: a sim head with Ws = I on h = onehot(labels') sees S(h) = the target of
    /// labels'. Against labels [0, 1, 0, 2], labels' = [0, 1, 1, 2] disagrees on pairs (0, 2)
    /// (+1 vs -1/2) and (1, 2) (-1/2 vs +1), each twice: loss = 4 * 1.5^2 / 16 = 9/16. With a 0
    /// instead of -1/2 in the target it would be (4 * 1 + 4 * 0.25 + 4 * 0.25) / 16 = 3/8.
    func testSimHeadLossAgainstTargetByHand() {
        var rng = Xoshiro256(seed: 1)
        let heads = LocalHeads<LinearMap>(loss: .sim, features: 3, classes: 3, layer: 0, rng: &rng, ledger: .shared)
        heads.simWeight!.value.copy(from: [1, 0, 0, 0, 1, 0, 0, 0, 1])
        func simLoss(hLabels: [Int32]) -> Float {
            let h = makeTensor([4, 3], Reference.oneHot(hLabels, classes: 3)), dh = zeros([4, 3])
            return labels.withUnsafeBufferPointer { heads.apply(h: h, labels: $0.baseAddress!, dh: dh, beta: 0.5).sim.loss }
        }
        // S(h) and the target are each within e = entryBound + normShift of exact, so each
        // squared difference d^2 (|d| <= 1.5) is within 2 |d| (2e) + (2e)^2 of exact; the mean of
        // 16 adds gammaTilde_16 of the loss and a rounding of the division.
        let e = entryBound + 2e-8 / (2.0 / 3).squareRoot()
        let meanRounding = RoundingBound.probabilistic(terms: 16) + 2 * RoundingBound.unitRoundoff
        XCTAssertEqual(Double(simLoss(hLabels: labels)), 0, accuracy: 4 * e * e)
        let mismatched = 9.0 / 16
        let mismatchedBound = (8 * (2 * 1.5 * 2 * e + 4 * e * e) + 8 * 4 * e * e) / 16 + meanRounding * mismatched
        XCTAssertEqual(Double(simLoss(hLabels: [0, 1, 1, 2])), mismatched, accuracy: mismatchedBound)
        // Broken variant: the loss of a target with 0 off the diagonal would be 3/8.
        XCTAssertGreaterThan(abs(Double(simLoss(hLabels: [0, 1, 1, 2])) - 3.0 / 8), mismatchedBound)
    }
}
