import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest
@testable import Layers

/// The two maps a hidden block is generic over report their shapes, FLOPs and scratch as the
/// kernels they wrap do, and the sim head's square map has the shape DESIGN.md section 2 gives.
final class HiddenMapTests: XCTestCase {
    func testLinearMapShapesFlopsAndNoScratch() {
        let map = LinearMap(inFeatures: 7, outFeatures: 5)
        XCTAssertEqual(map.inputShape(batch: 3), [3, 7])
        XCTAssertEqual(map.outputShape(batch: 3), [3, 5])
        XCTAssertEqual(map.weightShape, [5, 7])
        XCTAssertEqual(map.fanIn, 7)
        XCTAssertEqual(map.outSpatial, 1)
        XCTAssertEqual(map.flops(batch: 3), 2 * 3 * 7 * 5)
        XCTAssertEqual(map.workspaceBytes, 0)
        let square = LinearMap.square(over: map.outputFeatures, layer: 0, ledger: Ledger(), sharedWorkspace: nil)
        XCTAssertEqual(square.weightShape, [5, 5])
    }

    func testConvMapShapesFlopsAndTheWorkspaceItBooks() {
        let ledger = Ledger()
        let geometry = ConvGeometry(inChannels: 2, outChannels: 4, height: 6, width: 5)
        let map = ConvMap(geometry, layer: 0, ledger: ledger, sharedWorkspace: nil)
        XCTAssertEqual(map.inputShape(batch: 3), [3, 2, 6, 5])
        XCTAssertEqual(map.outputShape(batch: 3), [3, 4, 6, 5])
        XCTAssertEqual(map.outputFeatures, FeatureShape(channels: 4, height: 6, width: 5))
        XCTAssertEqual(map.fanIn, 2 * 9)
        XCTAssertEqual(map.outSpatial, 30)
        XCTAssertEqual(map.flops(batch: 3), 2 * 3 * 4 * 18 * 30)
        XCTAssertEqual(map.workspaceBytes, ledger.current().bytes(.workspace))
        let squareLedger = Ledger()
        let square = ConvMap.square(over: map.outputFeatures, layer: 0, ledger: squareLedger, sharedWorkspace: nil)
        XCTAssertEqual(square.weightShape, [4, 4, 3, 3])
        XCTAssertEqual(square.outputFeatures, map.outputFeatures)
        XCTAssertEqual(square.workspaceBytes, squareLedger.current().bytes(.workspace))
    }

    /// A linear map's forward and its two backwards against the matrix products they stand for.
    func testLinearMapForwardAndBackwardsAreTheMatrixProducts() {
        let map = LinearMap(inFeatures: 3, outFeatures: 2)
        let ledger = Ledger()
        func tensor(_ shape: [Int], _ values: [Float]) -> Tensor {
            let t = Tensor(shape, .activations, label: "t", ledger: ledger)
            t.copy(from: values)
            return t
        }
        let x = tensor([2, 3], [1, 2, 3, 4, 5, 6]), w = tensor([2, 3], [1, 0, -1, 2, 1, 0]), b = tensor([2], [0.5, -0.5])
        let y = tensor([2, 2], [0, 0, 0, 0])
        map.forward(x: x, weight: w, bias: b, into: y)
        XCTAssertEqual(y.array, [-1.5, 3.5, -1.5, 12.5])
        let dy = tensor([2, 2], [1, 0, 0, 1])
        let dw = tensor([2, 3], [0, 0, 0, 0, 0, 0]), db = tensor([2], [0, 0])
        map.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: db, accumulate: false)
        XCTAssertEqual(dw.array, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(db.array, [1, 1])
        map.backwardWeights(dy: dy, x: x, weightGrad: dw, biasGrad: db, accumulate: true)
        XCTAssertEqual(db.array, [2, 2])
        let dx = tensor([2, 3], [1, 1, 1, 1, 1, 1])
        map.backwardData(dy: dy, weight: w, into: dx, accumulate: true)
        XCTAssertEqual(dx.array, [2, 1, 0, 3, 2, 1])
    }
}
