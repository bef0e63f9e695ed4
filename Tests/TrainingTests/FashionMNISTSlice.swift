import DatasetTestSupport
import Foundation
import XCTest
@testable import Converters
@testable import Shards

/// A small real dataset for end-to-end tests: the first `train` training records and the first
/// `test` test records of Debian's Fashion-MNIST, cut into IDX files and converted to shards.
enum FashionMNISTSlice {
    /// Tests call `RequiredDataset.fashionMNIST.require()` first: a skip on a developer's
    /// machine, a failure under CI.
    static let root = RequiredDataset.fashionMNIST.directory

    static func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "layerwise-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Converts the slice into `directory` (splits "train" and "test") and returns it.
    @discardableResult
    static func make(in directory: String, train: Int, test: Int) throws -> String {
        let dataset = directory + "/fashion-mnist"
        for (split, prefix, count) in [("train", "train", train), ("test", "t10k", test)] {
            let images = try InputFile(path: "\(root)/\(prefix)-images-idx3-ubyte.gz")
            _ = try images.readExactly(16, expectedTotal: 16)
            let pixels = try images.readExactly(count * 784, expectedTotal: 16 + count * 784)
            let labelFile = try InputFile(path: "\(root)/\(prefix)-labels-idx1-ubyte.gz")
            _ = try labelFile.readExactly(8, expectedTotal: 8)
            let labels = try labelFile.readExactly(count, expectedTotal: 8 + count)
            let imagesPath = "\(directory)/\(split)-images.idx", labelsPath = "\(directory)/\(split)-labels.idx"
            try Data(idx(dims: [count, 28, 28], data: pixels)).write(to: URL(fileURLWithPath: imagesPath))
            try Data(idx(dims: [count], data: labels)).write(to: URL(fileURLWithPath: labelsPath))
            let input = try IDXInput(images: imagesPath, labels: labelsPath)
            _ = try DatasetConverter.convert(input, options: ConversionOptions(directory: dataset, split: split, classCount: 10))
        }
        return dataset
    }

    static func idx(dims: [Int], data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return out + data
    }
}

/// The training seeds an end-to-end test runs: 1, or the comma-separated list in
/// `LAYERWISE_E2E_SEEDS` (how the floors' margins were measured: `LAYERWISE_E2E_SEEDS=1,2,3,4,5`).
func endToEndSeeds() -> [UInt64] {
    guard let list = ProcessInfo.processInfo.environment["LAYERWISE_E2E_SEEDS"] else { return [1] }
    let seeds = list.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
    return seeds.isEmpty ? [1] : seeds
}
