import XCTest
import MemoryLedger
@testable import Converters
@testable import Shards

/// Normalisation, NCHW layout, crop and flip, checked against values computed by hand.
final class LoaderImageTests: XCTestCase {
    /// One 4x4 grey image with pixels 1...16 row by row.
    private func fourByFour() -> InMemoryBlockSource {
        InMemoryBlockSource(schema: LoaderFixtures.schema(height: 4, width: 4), blocks: [Array(1...16).map(UInt8.init) + [7]])
    }

    private func converter(_ source: InMemoryBlockSource, mean: Float, std: Float) throws -> ImageConverter {
        let layout = try ImageLayout(schema: source.schema)
        return ImageConverter(layout: layout, normalization: Normalization(mean: [mean], std: [std]),
                              augmentation: .fashionMNIST, ledger: Ledger())
    }

    private func convert(_ converter: ImageConverter, _ source: InMemoryBlockSource, top: Int, left: Int, flip: Bool) -> [Float] {
        var output = [Float](repeating: .nan, count: 16)
        source.blocks[0].withUnsafeBytes { record in
            output.withUnsafeMutableBufferPointer {
                converter.convert(record: record.baseAddress!, into: $0.baseAddress!, padding: 2, top: top, left: left, flip: flip)
            }
        }
        return output
    }

    func testCropOfAKnownImageMatchesTheHandComputedResult() throws {
        let source = fourByFour()
        // mean 0.5, std 0.25: a raw pixel v becomes (v/255 - 0.5) / 0.25; padding (raw 0) is -2.
        let converter = try converter(source, mean: 0.5, std: 0.25)
        func n(_ v: Float) -> Float { (v / 255 - 0.5) / 0.25 }
        let pad = n(0)
        XCTAssertEqual(pad, -2)

        // Crop at the padded origin: rows 0-1 and columns 0-1 are padding, then the image's
        // top-left 2x2 corner [1 2; 5 6].
        XCTAssertEqual(convert(converter, source, top: 0, left: 0, flip: false),
                       [pad, pad, pad, pad,
                        pad, pad, pad, pad,
                        pad, pad, n(1), n(2),
                        pad, pad, n(5), n(6)])
        // Offsets (2, 2) are the identity.
        XCTAssertEqual(convert(converter, source, top: 2, left: 2, flip: false), (1...16).map { n(Float($0)) })
        // top 3, left 1: crop[y][x] = image[y+1][x-1]; then flip: out[y][x] = crop[y][3-x] = image[y+1][2-x].
        // Row 0 is image row 1 (5 6 7 8) at columns 2, 1, 0, -1 -> 7 6 5 pad; the last row is below the image.
        XCTAssertEqual(convert(converter, source, top: 3, left: 1, flip: true),
                       [n(7), n(6), n(5), pad,
                        n(11), n(10), n(9), pad,
                        n(15), n(14), n(13), pad,
                        pad, pad, pad, pad])
        // A flip alone mirrors every row.
        XCTAssertEqual(convert(converter, source, top: 2, left: 2, flip: true),
                       [4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9, 16, 15, 14, 13].map { n(Float($0)) })
    }

    func testEveryCropAndFlipMatchesANaiveReferenceForBothPixelTypes() throws {
        // A 5x3 image with 2 channels; the reference reads padded[y + top][x' + left] pixel by pixel.
        let (height, width, channels) = (5, 3, 2)
        let raw: [UInt8] = (0..<(height * width * channels)).map { UInt8(($0 * 37 + 11) % 256) }
        let normalization = Normalization(mean: [0.25, 0.5], std: [0.5, 2])
        for type in [FieldType.uint8, .float32] {
            let schema = LoaderFixtures.schema(height: height, width: width, channels: channels, imageType: type)
            let layout = try ImageLayout(schema: schema)
            let converter = ImageConverter(layout: layout, normalization: normalization, augmentation: .fashionMNIST, ledger: Ledger())
            let record: [UInt8] = type == .uint8
                ? raw + [0]
                : raw.flatMap { withUnsafeBytes(of: (Float($0) / 255).bitPattern.littleEndian, Array.init) } + [0]
            for top in 0...4 {
                for left in 0...4 {
                    for flip in [false, true] {
                        var output = [Float](repeating: .nan, count: height * width * channels)
                        record.withUnsafeBytes { bytes in
                            output.withUnsafeMutableBufferPointer {
                                converter.convert(record: bytes.baseAddress!, into: $0.baseAddress!, padding: 2, top: top, left: left, flip: flip)
                            }
                        }
                        for c in 0..<channels {
                            for y in 0..<height {
                                for x in 0..<width {
                                    let sy = y + top - 2, sx = (flip ? width - 1 - x : x) + left - 2
                                    let value: Float = (0..<height).contains(sy) && (0..<width).contains(sx)
                                        ? Float(raw[(sy * width + sx) * channels + c]) / 255 : 0
                                    let expected = (value - normalization.mean[c]) / normalization.std[c]
                                    XCTAssertEqual(output[(c * height + y) * width + x], expected, accuracy: 1e-6,
                                                   "\(type) top \(top) left \(left) flip \(flip) c \(c) y \(y) x \(x)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func testLoaderAppliesTheChoiceSeededByEpochAndPosition() throws {
        let source = fourByFour()
        let config = LoaderConfig(batchSize: 1, seed: 99, threads: 0, augment: .fashionMNIST, mean: [0.5], std: [0.25])
        let loader = try BatchLoader(source: source, config: config, ledger: Ledger())
        let converter = try converter(source, mean: 0.5, std: 0.25)
        for epoch in 0..<20 {
            loader.startEpoch(epoch)
            let batch = try XCTUnwrap(loader.nextBatch())
            let choice = ImageConverter.augmentationChoice(.fashionMNIST, seed: 99, epoch: epoch, position: 0)
            let expected = convert(converter, source, top: choice.top, left: choice.left, flip: choice.flip)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: batch.images.pointer, count: 16)), expected, "epoch \(epoch)")
        }
    }

    func testAugmentationChoicesAreReproducibleAndWellSpread() {
        var flips = 0
        var offsets = Set<[Int]>()
        for position in 0..<4000 {
            let choice = ImageConverter.augmentationChoice(.fashionMNIST, seed: 5, epoch: 3, position: position)
            let again = ImageConverter.augmentationChoice(.fashionMNIST, seed: 5, epoch: 3, position: position)
            XCTAssertTrue(choice == again)
            XCTAssertTrue((0...4).contains(choice.top) && (0...4).contains(choice.left))
            if choice.flip { flips += 1 }
            offsets.insert([choice.top, choice.left])
        }
        // Binomial(4000, 0.5): standard deviation about 32; 1800...2200 is more than 6 of them.
        XCTAssertTrue((1800...2200).contains(flips), "\(flips) flips")
        XCTAssertEqual(offsets.count, 25)
        let otherEpoch = (0..<64).map { ImageConverter.augmentationChoice(.fashionMNIST, seed: 5, epoch: 4, position: $0).flip }
        let thisEpoch = (0..<64).map { ImageConverter.augmentationChoice(.fashionMNIST, seed: 5, epoch: 3, position: $0).flip }
        XCTAssertNotEqual(otherEpoch, thisEpoch)
    }

    func testUInt8NormalisationOfKnownValues() throws {
        let pixels: [UInt8] = [0, 51, 102, 255]
        let source = InMemoryBlockSource(schema: LoaderFixtures.schema(height: 2, width: 2), blocks: [pixels + [1]])
        let config = LoaderConfig(batchSize: 1, threads: 0, mean: [0.286], std: [0.353])
        let batch = try XCTUnwrap(BatchLoader(source: source, config: config, ledger: Ledger()).nextBatch())
        // (v / 255 - 0.286) / 0.353 for v = 0, 51, 102, 255.
        let expected: [Float] = [-0.810198, -0.243626, 0.322946, 2.022663]
        for i in 0..<4 { XCTAssertEqual(batch.images.pointer[i], expected[i], accuracy: 1e-5) }
        XCTAssertEqual(batch.labels.pointer[0], 1)
    }

    func testFloat32ImagesAreNormalisedAndLaidOutNCHW() throws {
        // A 1x2 image with 3 channels, HWC: pixel 0 = (0.5, 1, 2), pixel 1 = (-1, 0, 4).
        let schema = LoaderFixtures.schema(height: 1, width: 2, channels: 3, imageType: .float32, labelType: .int32)
        let values: [Float] = [0.5, 1, 2, -1, 0, 4]
        var bytes: [UInt8] = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        bytes += withUnsafeBytes(of: Int32(9).littleEndian, Array.init)
        let source = InMemoryBlockSource(schema: schema, blocks: [bytes])
        let config = LoaderConfig(batchSize: 2, threads: 1, mean: [0, 1, 2], std: [1, 2, 4])
        let batch = try XCTUnwrap(BatchLoader(source: source, config: config, ledger: Ledger()).nextBatch())
        XCTAssertEqual([batch.channels, batch.height, batch.width, batch.count], [3, 1, 2, 1])
        // NCHW: channel 0 = (0.5, -1) / 1; channel 1 = (1 - 1, 0 - 1) / 2; channel 2 = (2 - 2, 4 - 2) / 4.
        XCTAssertEqual(Array(UnsafeBufferPointer(start: batch.images.pointer, count: 6)), [0.5, -1, 0, -0.5, 0, 0.5])
        XCTAssertEqual(batch.labels.pointer[0], 9)
    }

    func testMeanAndStdAreComputedWithOnePassWhenNotGiven() throws {
        // Channel 0 alternates 0 and 255 (mean 0.5, std 0.5); channel 1 is always 51 (mean 0.2,
        // std 0, which falls back to 1); channel 2 is 0, 0, 0, 255 per record (mean 0.25,
        // std sqrt(0.25 * 0.75)).
        let schema = LoaderFixtures.schema(height: 2, width: 2, channels: 3)
        var record: [UInt8] = []
        for p in 0..<4 { record += [p % 2 == 0 ? 0 : 255, 51, p == 3 ? 255 : 0] }
        record.append(2)
        let source = InMemoryBlockSource(schema: schema, blocks: [record + record, record])
        let statistics = try Normalization.compute(source: source, ledger: Ledger())
        XCTAssertEqual(statistics.mean[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(statistics.std[0], 0.5, accuracy: 1e-6)
        XCTAssertEqual(statistics.mean[1], 0.2, accuracy: 1e-6)
        XCTAssertEqual(statistics.std[1], 1)
        XCTAssertEqual(statistics.mean[2], 0.25, accuracy: 1e-6)
        XCTAssertEqual(statistics.std[2], Float((0.25 * 0.75).squareRoot()), accuracy: 1e-6)
        let loader = try BatchLoader(source: source, config: LoaderConfig(batchSize: 3, threads: 1), ledger: Ledger())
        XCTAssertEqual(loader.normalization, statistics)
        // Channel 0 of the first pixel: (0 - 0.5) / 0.5.
        XCTAssertEqual(try XCTUnwrap(loader.nextBatch()).images.pointer[0], -1, accuracy: 1e-6)
    }
}
