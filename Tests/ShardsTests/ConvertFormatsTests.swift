import XCTest
@testable import Converters
@testable import Shards

/// Round trips and wrong inputs for the CIFAR, NPY and CSV converters.
final class ConvertFormatsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDirectory() }
    override func tearDown() { removeDirectory(dir) }

    func readSplit(_ ds: String, _ split: String = "train") throws -> [UInt8] { try decodeAll(try ShardDataset(directory: dir + "/" + ds).split(split)) }

    // MARK: CIFAR

    /// CIFAR records (label bytes + CHW image) and the HWC records they must become.
    func cifar(count: Int, labelBytes: Int, seed: UInt64, pick: Int) -> (file: [UInt8], expected: [UInt8]) {
        var file = [UInt8](), expected = [UInt8]()
        let pixels = testBytes(count * 3072, seed: seed)
        let labels = testBytes(count * labelBytes, seed: seed + 1, range: 10)
        for r in 0..<count {
            file += labels[r * labelBytes ..< (r + 1) * labelBytes]
            let chw = Array(pixels[r * 3072 ..< (r + 1) * 3072])
            file += chw
            for y in 0..<32 { for x in 0..<32 { for c in 0..<3 { expected.append(chw[c * 1024 + y * 32 + x]) } } }
            withUnsafeBytes(of: Int32(labels[r * labelBytes + pick]).littleEndian) { expected += $0 }
        }
        return (file, expected)
    }

    func testCIFAR10TwoFilesRoundTripAsHWC() throws {
        let a = cifar(count: 7, labelBytes: 1, seed: 1, pick: 0)
        let b = cifar(count: 5, labelBytes: 1, seed: 2, pick: 0)
        writeBytes(a.file, dir + "/data_batch_1.bin")
        writeBytes(b.file, dir + "/data_batch_2.bin")
        let input = try CIFARInput(files: [dir + "/data_batch_1.bin", dir + "/data_batch_2.bin"], variant: .cifar10)
        let report = try convert(input, to: dir + "/c10", blockBytes: 8000)
        XCTAssertEqual(report.schema, imageSchema(32, 32, 3, classes: 10))
        XCTAssertEqual(try readSplit("c10"), a.expected + b.expected)
    }

    func testCIFAR100PicksFineLabelsByDefaultAndCoarseOnRequest() throws {
        let fine = cifar(count: 6, labelBytes: 2, seed: 3, pick: 1)
        let coarse = cifar(count: 6, labelBytes: 2, seed: 3, pick: 0)
        writeBytes(fine.file, dir + "/train.bin")
        let f = try convert(try CIFARInput(files: [dir + "/train.bin"], variant: .cifar100), to: dir + "/fine")
        XCTAssertEqual(f.schema.classCount, 100)
        XCTAssertEqual(try readSplit("fine"), fine.expected)
        let c = try convert(try CIFARInput(files: [dir + "/train.bin"], variant: .cifar100, coarseLabels: true), to: dir + "/coarse")
        XCTAssertEqual(c.schema.classCount, 20)
        XCTAssertEqual(try readSplit("coarse"), coarse.expected)
    }

    /// Found by tools/fuzz.sh cifar: a read after the last record of the last file indexed past
    /// the file list and trapped; the reader must keep returning 0 at the end.
    func testCIFARReaderReturnsZeroAgainAfterTheEnd() throws {
        let a = cifar(count: 3, labelBytes: 1, seed: 11, pick: 0), b = cifar(count: 2, labelBytes: 1, seed: 12, pick: 0)
        writeBytes(a.file, dir + "/a.bin")
        writeBytes(b.file, dir + "/b.bin")
        let reader = try CIFARInput(files: [dir + "/a.bin", dir + "/b.bin"], variant: .cifar10).makeReader()
        var buffer = [UInt8](repeating: 0, count: 4 * 3076)
        var got = [UInt8]()
        while true {
            let n = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
            if n == 0 { break }
            got += buffer[0 ..< n * 3076]
        }
        XCTAssertEqual(got, a.expected + b.expected)
        for _ in 0..<2 { XCTAssertEqual(try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }, 0) }
    }

    func testCIFARFileThatIsNotWholeRecordsIsAnError() throws {
        writeBytes(Array(cifar(count: 3, labelBytes: 1, seed: 4, pick: 0).file.dropLast(10)), dir + "/cut.bin")
        assertShardError(try CIFARInput(files: [dir + "/cut.bin"], variant: .cifar10), mentioning: "cut.bin") {
            if case .invalidInput = $0 { return true } else { return false }
        }
    }

    func testCIFAR10LabelAboveNineIsOutOfRange() throws {
        var file = cifar(count: 4, labelBytes: 1, seed: 5, pick: 0).file
        file[2 * 3073] = 42
        writeBytes(file, dir + "/bad.bin")
        assertShardError(try convert(try CIFARInput(files: [dir + "/bad.bin"], variant: .cifar10), to: dir + "/x"), mentioning: "bad.bin") {
            if case .labelOutOfRange(_, 2, 42, 10) = $0 { return true } else { return false }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x/manifest.json"))
    }

    // MARK: NPY

    /// A .npy file (format 1.0) with the given dtype string, shape and raw little-endian data.
    func npy(_ descr: String, _ shape: [Int], _ data: [UInt8], fortran: Bool = false) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = header.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 255), UInt8(n >> 8)] + Array(header.utf8) + data
    }

    func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } } }
    func le(_ values: [Float]) -> [UInt8] { le(values.map(\.bitPattern)) }

    func testNPYUint8ImagesWithInt64LabelsRoundTrip() throws {
        let pixels = testBytes(9 * 4 * 3, seed: 6)
        let labels: [Int64] = [0, 1, 2, 3, 4, 0, 1, 2, 3]
        writeBytes(npy("|u1", [9, 4, 3], pixels), dir + "/x.npy")
        writeBytes(npy("<i8", [9], le(labels)), dir + "/y.npy")
        let report = try convert(try NPYInput(images: dir + "/x.npy", labels: dir + "/y.npy"), to: dir + "/n")
        XCTAssertEqual(report.schema, imageSchema(4, 3, 1, classes: 5))
        XCTAssertEqual(try readSplit("n"), records(images: pixels, labels: labels.map { Int32($0) }, imageBytes: 12))
    }

    func testNPYLabelsFarOutsideTheRestWarnAndCloseOnesDoNot() throws {
        let pixels = testBytes(12 * 4, seed: 3)
        writeBytes(npy("|u1", [12, 2, 2], pixels), dir + "/x.npy")
        writeBytes(npy("<i8", [12], le([Int64](arrayLiteral: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2))), dir + "/y.npy")
        XCTAssertEqual(try convert(try NPYInput(images: dir + "/x.npy", labels: dir + "/y.npy"), to: dir + "/ok").warnings, [])
        writeBytes(npy("<i8", [12], le([Int64](arrayLiteral: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1000, 1001))), dir + "/far.npy")
        let report = try convert(try NPYInput(images: dir + "/x.npy", labels: dir + "/far.npy"), to: dir + "/far")
        XCTAssertEqual(report.warnings.count, 1)
        XCTAssertTrue(report.warnings[0].contains("far.npy: labels 1000, 1001 (2 records) far above the others (0...9)"), report.warnings[0])
    }

    func testNPYFloat32AndFloat64FeaturesBecomeFloat32() throws {
        let values: [Float] = (0..<12).map { Float($0) * 0.25 - 1 }
        writeBytes(npy("<i4", [3], le([Int32(2), 0, 1])), dir + "/y.npy")
        var expected = [UInt8]()
        for r in 0..<3 { expected += le(Array(values[r * 4 ..< r * 4 + 4])) + le([Int32([2, 0, 1][r])]) }
        writeBytes(npy("<f4", [3, 4], le(values)), dir + "/x32.npy")
        let f32 = try convert(try NPYInput(images: dir + "/x32.npy", labels: dir + "/y.npy", shape: [2, 2, 1]), to: dir + "/f32")
        XCTAssertEqual(f32.schema.field("image"), Field(name: "image", type: .float32, shape: [2, 2, 1]))
        XCTAssertEqual(try readSplit("f32"), expected)
        writeBytes(npy("<f8", [3, 4], le(values.map { Double($0).bitPattern })), dir + "/x64.npy")
        let f64 = try convert(try NPYInput(images: dir + "/x64.npy", labels: dir + "/y.npy"), to: dir + "/f64")
        XCTAssertEqual(f64.schema.field("image")?.shape, [1, 1, 4])
        XCTAssertEqual(try readSplit("f64"), expected)
    }

    func testNPYFortranOrderIsAClearError() throws {
        writeBytes(npy("|u1", [2, 2, 2], [UInt8](repeating: 1, count: 8), fortran: true), dir + "/x.npy")
        writeBytes(npy("|u1", [2], [0, 1]), dir + "/y.npy")
        assertShardError(try NPYInput(images: dir + "/x.npy", labels: dir + "/y.npy"), mentioning: "Fortran order") {
            if case .invalidInput(let file, _) = $0 { return file.hasSuffix("x.npy") } else { return false }
        }
    }

    func testNPYWrongMagicTruncationCountsAndDtypesAreErrors() throws {
        writeBytes(npy("|u1", [2], [0, 1]), dir + "/y.npy")
        writeBytes(Array("not numpy at all".utf8), dir + "/bad.npy")
        assertShardError(try NPYInput(images: dir + "/bad.npy", labels: dir + "/y.npy"), mentioning: "magic") {
            if case .invalidInput = $0 { return true } else { return false }
        }
        writeBytes(npy("|u1", [2, 3, 3], [UInt8](repeating: 0, count: 10)), dir + "/short.npy")
        assertShardError(try NPYInput(images: dir + "/short.npy", labels: dir + "/y.npy")) {
            if case .truncatedInput = $0 { return true } else { return false }
        }
        writeBytes(npy("|u1", [3, 2], [UInt8](repeating: 0, count: 6)), dir + "/three.npy")
        assertShardError(try NPYInput(images: dir + "/three.npy", labels: dir + "/y.npy")) {
            if case .countMismatch(_, 3, _, 2) = $0 { return true } else { return false }
        }
        writeBytes(npy("<c8", [2, 2], [UInt8](repeating: 0, count: 32)), dir + "/complex.npy")
        assertShardError(try NPYInput(images: dir + "/complex.npy", labels: dir + "/y.npy"), mentioning: "<c8") {
            if case .invalidInput = $0 { return true } else { return false }
        }
        writeBytes(npy("<i8", [2], le([Int64(1), -3])), dir + "/neg.npy")
        writeBytes(npy("|u1", [2, 2], [1, 2, 3, 4]), dir + "/x.npy")
        assertShardError(try convert(try NPYInput(images: dir + "/x.npy", labels: dir + "/neg.npy"), to: dir + "/neg")) {
            if case .labelOutOfRange(_, 1, -3, _) = $0 { return true } else { return false }
        }
    }

    // MARK: CSV

    func testCSVWithHeaderAndNamedLabelColumnRoundTrips() throws {
        let text = "f1,f2,class,f3\n0.5, 1.5, 2, -3\n1,2,0,4e-1\r\n\n7.25,8,1,9\n"
        writeBytes(Array(text.utf8), dir + "/d.csv")
        let input = try CSVInput(path: dir + "/d.csv", labelColumn: .name("class"))
        XCTAssertTrue(input.hasHeader)
        XCTAssertEqual(input.recordCount, 3)
        let report = try convert(input, to: dir + "/csv")
        XCTAssertEqual(report.schema.field("image"), Field(name: "image", type: .float32, shape: [1, 1, 3]))
        XCTAssertEqual(report.schema.classCount, 3)
        let expected = le([0.5, 1.5, -3]) + le([Int32(2)]) + le([1, 2, 0.4]) + le([Int32(0)]) + le([7.25, 8, 9]) + le([Int32(1)])
        XCTAssertEqual(try readSplit("csv"), expected)
    }

    func testCSVLabelFarOutsideTheRestWarnsAndCloseOnesDoNot() throws {
        let rows = (0..<20).map { "\($0 % 5),\($0),\($0 * 2)" }
        writeBytes(Array((rows.joined(separator: "\n") + "\n").utf8), dir + "/ok.csv")
        XCTAssertEqual(try convert(try CSVInput(path: dir + "/ok.csv"), to: dir + "/ok").warnings, [])
        writeBytes(Array((rows.joined(separator: "\n") + "\n99,1,2\n").utf8), dir + "/far.csv")
        let report = try convert(try CSVInput(path: dir + "/far.csv"), to: dir + "/far")
        XCTAssertEqual(report.warnings.count, 1)
        XCTAssertTrue(report.warnings[0].contains("far.csv: label 99 (1 record) far above the others (0...4)"), report.warnings[0])
        XCTAssertEqual(report.schema.classCount, 100)
    }

    func testCSVWithoutHeaderAsUint8ImagesGzipped() throws {
        var text = ""
        var expected = [UInt8]()
        for r in 0..<5 {
            let pixels = (0..<4).map { (r * 50 + $0 * 7) % 256 }
            text += "\(r % 2)," + pixels.map(String.init).joined(separator: ",") + "\n"
            expected += pixels.map { UInt8($0) } + le([Int32(r % 2)])
        }
        try InputFile.writeGzip(Array(text.utf8), to: dir + "/d.csv.gz")
        let input = try CSVInput(path: dir + "/d.csv.gz", featureType: .uint8, shape: [2, 2, 1])
        XCTAssertFalse(input.hasHeader)
        _ = try convert(input, to: dir + "/csv")
        XCTAssertEqual(try readSplit("csv"), expected)
    }

    func testRaggedCSVNamesTheLine() throws {
        writeBytes(Array("1,2,3\n0,4,5\n\n1,6\n".utf8), dir + "/r.csv")
        assertShardError(try CSVInput(path: dir + "/r.csv"), mentioning: "line 4") {
            if case .invalidLine(_, 4, _) = $0 { return true } else { return false }
        }
    }

    func testCSVBadCellsNameLineAndFailAtomically() throws {
        writeBytes(Array("1,2,3\n0,x4,5\n".utf8), dir + "/n.csv")
        assertShardError(try convert(try CSVInput(path: dir + "/n.csv"), to: dir + "/a"), mentioning: "line 2") {
            if case .invalidLine(_, 2, _) = $0 { return true } else { return false }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a/manifest.json"))
        writeBytes(Array("1,2,3\n0.5,4,5\n".utf8), dir + "/l.csv")
        assertShardError(try convert(try CSVInput(path: dir + "/l.csv"), to: dir + "/b"), mentioning: "not an integer") {
            if case .invalidLine(_, 2, _) = $0 { return true } else { return false }
        }
        writeBytes(Array("1,2,300\n".utf8), dir + "/u.csv")
        assertShardError(try convert(try CSVInput(path: dir + "/u.csv", featureType: .uint8), to: dir + "/c")) {
            if case .invalidLine(_, 1, _) = $0 { return true } else { return false }
        }
    }
}
