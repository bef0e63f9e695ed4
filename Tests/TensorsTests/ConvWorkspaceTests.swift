import MemoryLedger
import NumericTestSupport
import Tensors
import XCTest

final class ConvWorkspaceTests: XCTestCase {
    /// A block's conv and its sim head's conv share one allocation, the larger of the two
    /// bounds, and the shared view computes the same as a workspace of its own.
    func testOneWorkspaceServesTwoConvsWithOneAllocation() {
        let block = ConvGeometry(inChannels: 2, outChannels: 3, height: 5, width: 7)
        let sim = ConvGeometry(inChannels: 3, outChannels: 3, height: 5, width: 7)
        let ledger = Ledger()
        let shared = ConvWorkspace(block, alsoServing: [sim], engine: .im2col, ledger: ledger)
        let view = shared.serving(sim)
        XCTAssertEqual(ledger.current().bytes(.workspace), ConvWorkspace.bytes(covering: [block, sim], engine: .im2col))
        XCTAssertEqual(ConvWorkspace.bytes(covering: [block, sim], engine: .im2col), max(ConvWorkspace.bytes(block, engine: .im2col), ConvWorkspace.bytes(sim, engine: .im2col)))
        XCTAssertEqual(ledger.operationCounts.allocations, 1)
        XCTAssertTrue(view.storage === shared.storage)

        var rng = ConvCheck.Random(seed: 5)
        let xs = rng.uniform(3 * 3 * 35), ws = rng.uniform(3 * 27)
        let x = ConvCheck.tensor(sim.inputShape(batch: 3), xs)
        let w = ConvCheck.tensor(sim.weightShape, ws)
        let viaView = Tensor(sim.outputShape(batch: 3), .activations, label: "y")
        let viaOwn = Tensor(sim.outputShape(batch: 3), .activations, label: "y")
        Conv2dKernel.forward(x: x, weight: w, bias: nil, into: viaView, workspace: view)
        Conv2dKernel.forward(x: x, weight: w, bias: nil, into: viaOwn, workspace: ConvWorkspace(sim, engine: .im2col))
        // Each against Float64 within the bound of its C k^2-term sums: the view may group
        // images per GEMM differently from a workspace of its own.
        let expected = Rounded.ofSums(terms: sim.inChannels * sim.kernel * sim.kernel,
                                      exact: ConvKernelTests.referenceConv(xs, ws, nil, sim, batch: 3),
                                      absoluteSums: ConvKernelTests.referenceConv(xs.map(abs), ws.map(abs), nil, sim, batch: 3))
        assertWithinBound(ConvCheck.doubles(viaView), expected, "through the shared view")
        assertWithinBound(ConvCheck.doubles(viaOwn), expected, "through a workspace of its own")
    }
}
