import Foundation
import XCTest
@testable import Converters
@testable import Shards

/// A fresh temporary folder per test, removed afterwards.
func makeTempDirectory(_ name: String = #function) -> String {
    let clean = name.filter { $0.isLetter || $0.isNumber }
    let path = NSTemporaryDirectory() + "shards-\(clean)-\(getpid())-\(UInt64.random(in: 0 ..< .max))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

func readBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path)!) }

func writeBytes(_ bytes: [UInt8], _ path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

/// Deterministic test bytes (a small LCG; tests must not depend on the system generator).
func testBytes(_ count: Int, seed: UInt64 = 1, range: Int = 256) -> [UInt8] {
    var x = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        x = x &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(Int(x >> 33) % range)
    }
}

/// A tiny image-like schema: uint8 [h, w, c] image + int32 label.
func imageSchema(_ h: Int, _ w: Int, _ c: Int, classes: Int) -> RecordSchema {
    RecordSchema(fields: [Field(name: "image", type: .uint8, shape: [h, w, c]), Field(name: "label", type: .int32, shape: [])],
                 classCount: classes)
}

/// Records of an image schema: image bytes from `images` and labels, concatenated.
func records(images: [UInt8], labels: [Int32], imageBytes: Int) -> [UInt8] {
    var out = [UInt8]()
    for (i, label) in labels.enumerated() {
        out += images[i * imageBytes ..< (i + 1) * imageBytes]
        withUnsafeBytes(of: label.littleEndian) { out += $0 }
    }
    return out
}

/// All records of a split in storage order, decoded through the loader's interface.
func decodeAll(_ source: RecordBlockSource) throws -> [UInt8] {
    let decoder = try source.makeDecoder()
    var buffer = [UInt8](repeating: 0, count: source.maxBlockBytes)
    var out = [UInt8]()
    for b in 0..<source.blockCount {
        let n = try buffer.withUnsafeMutableBytes { try decoder.decode(block: b, into: $0) }
        XCTAssertEqual(n, source.recordCount(ofBlock: b))
        out += buffer[0 ..< n * source.schema.recordSize]
    }
    return out
}

/// Records as an array of byte arrays, sorted, to compare contents regardless of order.
func sortedRecords(_ bytes: [UInt8], recordSize: Int) -> [[UInt8]] {
    stride(from: 0, to: bytes.count, by: recordSize).map { Array(bytes[$0 ..< $0 + recordSize]) }
        .sorted { $0.lexicographicallyPrecedes($1) }
}

/// IDX file bytes: magic 00 00 08 rank, big-endian dims, data.
func idxBytes(dims: [Int], data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
    for d in dims { out += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return out + data
}

/// Asserts that `body` throws exactly a `ShardError` matching `matches`, and that its
/// description reads as a sentence naming `mentioning`.
func assertShardError<T>(_ body: @autoclosure () throws -> T, mentioning: String? = nil, file: StaticString = #filePath, line: UInt = #line,
                         _ matches: (ShardError) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected a ShardError, got success", file: file, line: line)
    } catch let error as ShardError {
        XCTAssertTrue(matches(error), "unexpected error case: \(error)", file: file, line: line)
        XCTAssertTrue(error.description.hasSuffix("."), "not a sentence: \(error)", file: file, line: line)
        if let mentioning { XCTAssertTrue(error.description.contains(mentioning), "\(error) does not mention \(mentioning)", file: file, line: line) }
    } catch {
        XCTFail("expected a ShardError, got \(error)", file: file, line: line)
    }
}


/// Converts with test-friendly defaults: small blocks, no shuffle unless asked.
func convert(_ input: RecordInput, to directory: String, split: String = "train", blockBytes: Int = 1024, threads: Int = 1,
             shardRecords: Int? = nil, seed: UInt64? = nil, memoryBudget: Int = 64 << 20, classCount: Int? = nil,
             replace: Bool = false) throws -> ConversionReport {
    let options = ConversionOptions(directory: directory, split: split,
                                    writer: ShardWriterOptions(blockBytes: blockBytes, level: 3, threads: threads),
                                    shardRecords: shardRecords, shuffleSeed: seed, memoryBudget: memoryBudget,
                                    classCount: classCount, replace: replace)
    return try DatasetConverter.convert(input, options: options)
}
