import Layers
import MemoryLedger
import Tensors
import XCTest

/// The VGG family's specs (DESIGN.md section 2): layer lists, spatial sizes, `featMult`, the
/// paper's parameter counts, the heads' size, and the pred heads' pooling on 28x28.
final class VGGSpecTests: XCTestCase {
    private func spec(_ kind: ModelSpec.Kind, featMult: Float = 1, loss: LossKind = .predsim) -> ModelSpec {
        var s = ModelSpec()
        s.kind = kind
        s.inputShape = [1, 28, 28]
        s.classes = 10
        s.numHidden = 1024
        s.featMult = featMult
        s.dimInDecoder = 1024
        s.loss = loss
        return s
    }

    private func blocks(_ s: ModelSpec) -> [[Int]] {
        s.convBlocks.map { [$0.inChannels, $0.outChannels, $0.height, $0.width, $0.poolAfter ? 1 : 0] }
    }

    /// vgg8b = conv 128 256 M 256 512 M 512 M 512 M, then Linear 1024, then output.
    /// Per conv block 9 Cin Cout + Cout (conv) + 2 Cout (BN):
    ///   1 -> 128: 1,152 + 128 + 256          =     1,536
    ///   128 -> 256: 294,912 + 256 + 512      =   295,680
    ///   256 -> 256: 589,824 + 768            =   590,592
    ///   256 -> 512: 1,179,648 + 1,536        = 1,181,184
    ///   512 -> 512: 2,359,296 + 1,536        = 2,360,832 (twice)
    ///   conv total                           = 6,790,656
    /// 28 -> 14 -> 7 -> 3 -> 1 through the four pools: the Linear block reads 512 x 1 x 1:
    ///   512 * 1024 + 1024 + 2 * 1024         =   527,360
    ///   output 1024 * 10 + 10                =    10,250
    ///   total                                = 7,328,266
    func testVgg8bParameterCountMatchesThePaper() {
        let s = spec(.vgg8b)
        XCTAssertEqual(blocks(s), [[1, 128, 28, 28, 0], [128, 256, 28, 28, 1], [256, 256, 14, 14, 0], [256, 512, 14, 14, 1],
                                   [512, 512, 7, 7, 1], [512, 512, 3, 3, 1]])
        XCTAssertEqual(s.linearInputFeatures, 512)
        XCTAssertEqual(s.linearBlockCount, 1)
        XCTAssertEqual(s.parameterCount, 7_328_266)
        XCTAssertEqual(s.parameterCount, 6_790_656 + 527_360 + 10_250)
        // The count does not depend on the training signal: heads are not counted.
        XCTAssertEqual(spec(.vgg8b, loss: .backprop).parameterCount, 7_328_266)
    }

    func testMlpParameterCountIsUnchangedByConvSettings() {
        var s = ModelSpec()
        s.kind = .mlp
        s.numLayers = 3
        s.numHidden = 1024
        XCTAssertEqual(s.parameterCount, 2_919_434)
        s.featMult = 0.25
        s.dimInDecoder = 64
        XCTAssertTrue(s.convBlocks.isEmpty)
        XCTAssertEqual(s.parameterCount, 2_919_434, "featMult and dimInDecoder are VGG settings")
    }

    /// vgg11b = 128 128 128 256 M 256 512 M 512 512 M 512 M: spatial sizes 28 (four blocks),
    /// 14 (two), 7 (two), 3 (one), then 1x1 into the Linear block.
    func testVgg11bChannelsAndSpatialSizesFollowTheLayerList() {
        let s = spec(.vgg11b)
        XCTAssertEqual(ModelSpec.layerList(.vgg11b), [.conv(128), .conv(128), .conv(128), .conv(256), .maxPool, .conv(256), .conv(512), .maxPool,
                                                      .conv(512), .conv(512), .maxPool, .conv(512), .maxPool])
        XCTAssertEqual(blocks(s), [[1, 128, 28, 28, 0], [128, 128, 28, 28, 0], [128, 128, 28, 28, 0], [128, 256, 28, 28, 1],
                                   [256, 256, 14, 14, 0], [256, 512, 14, 14, 1],
                                   [512, 512, 7, 7, 0], [512, 512, 7, 7, 1],
                                   [512, 512, 3, 3, 1]])
        XCTAssertEqual(s.linearInputFeatures, 512)
        // conv: 1,536 + 2 * (147,456 + 384) + (294,912 + 768) + (589,824 + 768) + (1,179,648 + 1,536)
        //       + 3 * (2,359,296 + 1,536) = 9,447,168; Linear 527,360; output 10,250.
        XCTAssertEqual(s.parameterCount, 9_447_168 + 527_360 + 10_250)
        // On 32x32x3 (CIFAR): 32 -> 16 -> 8 -> 4 -> 2, the Linear block reads 512 x 2 x 2.
        var cifar = s
        cifar.inputShape = [3, 32, 32]
        XCTAssertEqual(cifar.convBlocks.map(\.height), [32, 32, 32, 32, 16, 16, 8, 8, 4])
        XCTAssertEqual(cifar.convBlocks[0].inChannels, 3)
        XCTAssertEqual(cifar.linearInputFeatures, 2048)
    }

    /// featMult scales the conv widths (rounded down, at least 1) and nothing else: not the
    /// Linear block's width, the classes, the spatial sizes or the pools.
    func testFeatMultScalesConvWidthsOnly() {
        let full = spec(.vgg8b), quarter = spec(.vgg8b, featMult: 0.25)
        XCTAssertEqual(quarter.convBlocks.map(\.outChannels), [32, 64, 64, 128, 128, 128])
        XCTAssertEqual(quarter.convBlocks.map(\.inChannels), [1, 32, 64, 64, 128, 128])
        XCTAssertEqual(quarter.convBlocks.map(\.height), full.convBlocks.map(\.height))
        XCTAssertEqual(quarter.convBlocks.map(\.poolAfter), full.convBlocks.map(\.poolAfter))
        XCTAssertEqual(quarter.linearInputFeatures, 128)
        // conv: (288 + 96) + (18,432 + 192) + (36,864 + 192) + (73,728 + 384) + 2 * (147,456 + 384)
        //     = 425,856; Linear 128 -> 1024: 131,072 + 3,072; output 10,250.
        XCTAssertEqual(quarter.parameterCount, 425_856 + 134_144 + 10_250)
        XCTAssertEqual(spec(.vgg8b, featMult: 2).convBlocks.map(\.outChannels), [256, 512, 512, 1024, 1024, 1024])
        XCTAssertEqual(spec(.vgg8b, featMult: 1 / 1024).convBlocks.map(\.outChannels), [1, 1, 1, 1, 1, 1], "at least one channel")
        // Built networks agree: the Linear block keeps numHidden and reads the scaled hand-off.
        let net = Network(spec: quarter, seed: 1, optimizer: sgd, ledger: Ledger())
        XCTAssertEqual(net.blocks.map(\.inFeatures), [128])
        XCTAssertEqual(net.blocks.map(\.outFeatures), [1024])
        XCTAssertEqual(net.convBlocks.map(\.geometry.outChannels), [32, 64, 64, 128, 128, 128])
    }

    private var sgd: OptimizerSettings {
        var s = OptimizerSettings()
        s.kind = .sgd
        s.momentum = 0
        return s
    }

    /// predsim heads of vgg8b on 28x28, dim_in_decoder 1024 (not in #params, but in memory;
    /// DESIGN.md says about 9.5M). Each conv block's pred head pools to exactly 1,024 features
    /// (PredHeadPooling: 128x28x28 -> 128x2x4, 256x28x28 -> 256x2x2, 256x14x14 -> 256x2x2,
    /// 512x14x14 -> 512x1x2, 512x7x7 -> 512x1x2, 512x3x3 -> 512x1x2), so each pred head is
    /// 1,024 * 10 + 10 = 10,250; the sim heads are 3x3 convs C -> C without bias, 9 C^2:
    ///   pred, six conv blocks              6 * 10,250 =    61,500
    ///   sim 128                            9 * 128^2  =   147,456
    ///   sim 256 (two)                  2 * 9 * 256^2  = 1,179,648
    ///   sim 512 (three)                3 * 9 * 512^2  = 7,077,888
    ///   Linear block: pred 1024 * 10 + 10, sim 1024^2 = 1,058,826
    ///   total                                           9,525,318
    func testVgg8bPredsimHeadParameterCount() {
        let s = spec(.vgg8b)
        XCTAssertEqual(s.headParameterCount, 9_525_318)
        XCTAssertEqual(s.headParameterCount, 61_500 + 147_456 + 1_179_648 + 7_077_888 + 1_058_826)
        XCTAssertEqual(spec(.vgg8b, loss: .backprop).headParameterCount, 0)
    }

    /// DESIGN.md's worked examples, read from the conv blocks' heads of a real vgg8b network (28x28,
    /// dim_in_decoder 1024): the first block pools 128x28x28 with kernel 16x8 and padding 8x4 to
    /// 128x2x4; the last (512 at 3x3) with kernel 4x2 (padding 2x1) to 512x1x2. The built
    /// network's parameters and head parameters add up to the spec's counts.
    func testPredHeadPoolingOfARealVgg8bMatchesTheWorkedExamples() {
        let ledger = Ledger()
        let net = Network(spec: spec(.vgg8b), seed: 1, optimizer: sgd, ledger: ledger)
        let pools = net.convBlocks.map { $0.heads!.pooling }
        let first = pools[0], last = pools[5]
        XCTAssertEqual([first.channels, first.height, first.width], [128, 28, 28])
        XCTAssertEqual([first.kernelHeight, first.kernelWidth, first.padHeight, first.padWidth], [16, 8, 8, 4], "\(first)")
        XCTAssertEqual([first.outHeight, first.outWidth], [2, 4], "\(first)")
        XCTAssertEqual(first.geometry.outHeight, 2, "the padded average pooling itself gives 2 rows")
        XCTAssertEqual(first.geometry.outWidth, 4, "and 4 columns")
        XCTAssertEqual([last.channels, last.height, last.width], [512, 3, 3])
        XCTAssertEqual([last.kernelHeight, last.kernelWidth, last.padHeight, last.padWidth], [4, 2, 2, 1], "\(last)")
        XCTAssertEqual([last.outHeight, last.outWidth, last.geometry.outHeight, last.geometry.outWidth], [1, 2, 1, 2], "\(last)")
        XCTAssertEqual(net.convBlocks[0].heads!.predWeight!.shape, [10, 1024])
        XCTAssertEqual(net.convBlocks[5].heads!.predWeight!.shape, [10, 1024])
        XCTAssertEqual(pools.map { $0.channels * $0.outHeight * $0.outWidth }, [1024, 1024, 1024, 1024, 1024, 1024])

        let params = net.convBlocks.flatMap(\.parameters) + net.blocks.flatMap(\.parameters) + net.output.parameters
        XCTAssertEqual(params.reduce(0) { $0 + $1.count }, net.spec.parameterCount)
        let heads = net.convBlocks.flatMap { $0.heads!.parameters } + net.blocks.flatMap { $0.heads!.parameters }
        XCTAssertEqual(heads.reduce(0) { $0 + $1.count }, net.spec.headParameterCount)
        XCTAssertEqual(ledger.current().bytes(.headWeights), 4 * net.spec.headParameterCount)
    }
}
