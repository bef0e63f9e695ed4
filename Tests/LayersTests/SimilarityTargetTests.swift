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

    /// The path the heads take: Similarity.forward on one-hot rows, then clamp in place.
    func testSimTargetIsMinusOneOverKMinusOneOffDiagonal() {
        let y = makeTensor([4, 3], Reference.oneHot(labels, classes: 3))
        let u = zeros([4, 3]), norms = zeros([4]), t = zeros([4, 4])
        Similarity.forward(y, normalized: u, norms: norms, raw: t)
        Similarity.clamp(t, into: t)
        assertClose(t.doubles, byHand, tolerance: 1e-5, "S(onehot)")
        assertClose(HeadReference.simTarget(labels: labels, classes: 3), byHand, tolerance: 1e-7, "Float64 reference target (1e-8 in the norm moves the diagonal by ~2e-8)")
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
        XCTAssertEqual(Double(simLoss(hLabels: labels)), 0, accuracy: 1e-6)
        XCTAssertEqual(Double(simLoss(hLabels: [0, 1, 1, 2])), 9.0 / 16, accuracy: 1e-5)
    }
}
