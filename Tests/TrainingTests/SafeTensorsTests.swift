import Foundation
import XCTest
@testable import Training

final class SafeTensorsTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "safetensors-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("mkdtemp failed") }
        directory = String(cString: made)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: helpers

    private func path(_ name: String) -> String { directory + "/" + name }

    private func write(_ bytes: [UInt8], to name: String) -> String {
        let p = path(name)
        XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data(bytes)))
        return p
    }

    /// A file as the spec describes it: length prefix, header text, data.
    private func file(header: String, data: [UInt8], lengthOverride: UInt64? = nil) -> [UInt8] {
        let length = lengthOverride ?? UInt64(header.utf8.count)
        return withUnsafeBytes(of: length.littleEndian) { Array($0) } + Array(header.utf8) + data
    }

    private func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    /// The error `body` throws, or a failure if it throws none or another kind.
    private func error(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        do {
            try body()
            XCTFail("expected a SafeTensorsError", file: file, line: line)
        } catch let e as SafeTensorsError {
            return e
        } catch {
            XCTFail("expected a SafeTensorsError, got \(error)", file: file, line: line)
        }
        return nil
    }

    private func readError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        let p = write(bytes, to: "bad.safetensors")
        return error({ _ = try SafeTensors.read(p) }, file: file, line: line)
    }

    private var sample: [SafeTensorsEntry] {
        [SafeTensorsEntry(name: "layer0.weight", shape: [2, 3], floats: [1, -2, 3.5, 0, .pi, -1e-30]),
         SafeTensorsEntry(name: "adam.step", shape: [], values: [Int64(1234)]),
         SafeTensorsEntry(name: "labels", shape: [5], values: [UInt8](arrayLiteral: 0, 1, 2, 254, 255)),
         SafeTensorsEntry(name: "layer0.bias", shape: [3], values: [Double](arrayLiteral: 0.25, -7, 1e300)),
         SafeTensorsEntry(name: "empty", shape: [0, 4], values: [Int32]()),
         SafeTensorsEntry(name: "counts", shape: [2], values: [Int32](arrayLiteral: -5, Int32.max))]
    }

    // MARK: round trip and layout

    func testRoundTripKeepsNamesDtypesShapesValuesAndMetadata() throws {
        let p = path("model.safetensors")
        let metadata = ["format": "layerwise", "quote\"and\\slash": "line\nbreak\t\u{1}é"]
        try SafeTensors.write(sample, metadata: metadata, to: p)
        let file = try SafeTensors.read(p)
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.names, ["adam.step", "counts", "empty", "labels", "layer0.bias", "layer0.weight"])
        XCTAssertEqual(try file.floats("layer0.weight"), [1, -2, 3.5, 0, .pi, -1e-30])
        XCTAssertEqual(try file.info("layer0.weight").shape, [2, 3])
        XCTAssertEqual(try file.info("layer0.weight").dtype, .f32)
        XCTAssertEqual(try file.array("adam.step", as: Int64.self), [1234])
        XCTAssertEqual(try file.info("adam.step").shape, [])
        XCTAssertEqual(try file.array("labels", as: UInt8.self), [0, 1, 2, 254, 255])
        XCTAssertEqual(try file.array("layer0.bias", as: Double.self), [0.25, -7, 1e300])
        XCTAssertEqual(try file.array("empty", as: Int32.self), [])
        XCTAssertEqual(try file.info("empty").shape, [0, 4])
        XCTAssertEqual(try file.array("counts", as: Int32.self), [-5, Int32.max])

        var into = [Float](repeating: 0, count: 6)
        try into.withUnsafeMutableBytes { try file.copy("layer0.weight", into: $0) }
        XCTAssertEqual(into, [1, -2, 3.5, 0, .pi, -1e-30])
        XCTAssertEqual(try SafeTensors.encode(sample, metadata: metadata),
                       Array(try Data(contentsOf: URL(fileURLWithPath: p))), "encode and write produce the same bytes")
    }

    func testTensorsAreStoredInSortedNameOrderAfterAnAlignedHeader() throws {
        let encoded = try SafeTensors.encode(sample, metadata: ["k": "v"])
        let headerLength = encoded.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        XCTAssertEqual((8 + headerLength) % 8, 0)
        let header = String(decoding: encoded[8..<(8 + headerLength)], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{\"__metadata__\":{\"k\":\"v\"},"))
        XCTAssertTrue(header.hasSuffix("}") || header.hasSuffix(" "))
        let p = write(encoded, to: "sorted.safetensors")
        let file = try SafeTensors.read(p)
        XCTAssertEqual(file.tensors.map(\.name), ["adam.step", "counts", "empty", "labels", "layer0.bias", "layer0.weight"])
        XCTAssertEqual(file.tensors.map(\.dataOffsets.lowerBound), [0, 8, 16, 16, 21, 45])
        XCTAssertEqual(encoded.count, 8 + headerLength + 69)
    }

    /// The bytes for one zero F32 (2, 2) tensor named "t", written out from the spec: length 64
    /// ('@'), 57 bytes of JSON, 7 spaces of padding, 16 zero bytes. (candle's safetensors test
    /// expects exactly these bytes from its writer.)
    func testEncodingOfASmallTensorMatchesTheSpecByteForByte() throws {
        let expected = file(header: "{\"t\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}       ",
                            data: [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(expected[0], UInt8(ascii: "@"))
        XCTAssertEqual(try SafeTensors.encode([SafeTensorsEntry(name: "t", shape: [2, 2], floats: [0, 0, 0, 0])]), expected)
    }

    // MARK: files made by others

    /// The example file of huggingface/safetensors' documentation: a 60-byte header without
    /// padding (the spec allows it), one I32 (2, 2) tensor.
    func testReferenceExampleWithoutPaddingParses() throws {
        let header = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
        let bytes = file(header: header, data: bytes([Int32](arrayLiteral: 1, 2, 3, -4)))
        XCTAssertEqual(bytes[0], 0x3C)
        let parsed = try SafeTensors.read(write(bytes, to: "reference.safetensors"))
        XCTAssertEqual(parsed.names, ["test"])
        XCTAssertEqual(try parsed.info("test").shape, [2, 2])
        XCTAssertEqual(try parsed.array("test", as: Int32.self), [1, 2, 3, -4])
        XCTAssertEqual(parsed.metadata, [:])
    }

    /// Built by hand from the spec as another writer might lay it out: keys unsorted, data not in
    /// name order, whitespace in the JSON, metadata last, space padding.
    func testHandBuiltFileWithMetadataParses() throws {
        let header = """
        { "weight" : {"dtype": "F32", "shape": [2, 2], "data_offsets": [24, 40]},
          "ids": {"data_offsets": [0, 24], "shape": [3], "dtype": "I64"},
          "__metadata__": {"format": "pt", "epoch": "3"} }\("        ")
        """
        let data = bytes([Int64](arrayLiteral: 7, -8, 1 << 40)) + bytes([Float](arrayLiteral: 0.5, -1.5, 2, 1e-3))
        let parsed = try SafeTensors.read(write(file(header: header, data: data), to: "hand.safetensors"))
        XCTAssertEqual(parsed.metadata, ["format": "pt", "epoch": "3"])
        XCTAssertEqual(parsed.names, ["ids", "weight"])
        XCTAssertEqual(parsed.tensors.map(\.name), ["ids", "weight"], "data order")
        XCTAssertEqual(try parsed.array("ids", as: Int64.self), [7, -8, 1 << 40])
        XCTAssertEqual(try parsed.floats("weight"), [0.5, -1.5, 2, 1e-3])
        XCTAssertEqual(try parsed.info("weight").dataOffsets, 24..<40)
    }

    // MARK: corrupt files

    func testTruncationAtEveryRegionGivesTheMatchingError() throws {
        let whole = try SafeTensors.encode(sample)
        let headerLength = whole.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        let dataStart = 8 + headerLength
        for cut in [0, 1, 7] {
            XCTAssertEqual(readError(Array(whole[..<cut])), .fileTooShort(file: path("bad.safetensors"), size: cut))
        }
        for cut in [8, 9, dataStart / 2, dataStart - 1] {
            XCTAssertEqual(readError(Array(whole[..<cut])),
                           .headerBeyondFile(file: path("bad.safetensors"), headerLength: UInt64(headerLength), available: cut - 8))
        }
        // Data is in sorted-name order: adam.step [0, 8), counts [8, 16), ..., layer0.weight [45, 69).
        XCTAssertEqual(readError(Array(whole[..<(dataStart + 3)])),
                       .dataBeyondFile(file: path("bad.safetensors"), tensor: "adam.step", end: 8, available: 3))
        XCTAssertEqual(readError(Array(whole[..<(whole.count - 1)])),
                       .dataBeyondFile(file: path("bad.safetensors"), tensor: "layer0.weight", end: 69, available: 68))
        // The whole file still reads.
        XCTAssertNoThrow(try SafeTensors.read(write(whole, to: "whole.safetensors")))
    }

    func testLyingHeaderLengthIsCaught() {
        let header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let data: [UInt8] = [0, 0, 128, 63]
        let p = path("bad.safetensors")
        XCTAssertEqual(readError(file(header: header, data: data, lengthOverride: UInt64(header.utf8.count + 5))),
                       .headerBeyondFile(file: p, headerLength: UInt64(header.utf8.count + 5), available: header.utf8.count + 4))
        XCTAssertEqual(readError(file(header: header, data: data, lengthOverride: 1 << 63)),
                       .headerBeyondFile(file: p, headerLength: 1 << 63, available: header.utf8.count + 4))
        // Shorter than the JSON: the header is cut mid-object.
        guard case .invalidHeader(p, _)? = readError(file(header: header, data: data, lengthOverride: UInt64(header.utf8.count - 3))) else {
            return XCTFail("a short header length must make the JSON invalid")
        }
    }

    func testOverlappingGappedAndTrailingDataAreRejected() {
        let p = path("bad.safetensors")
        let overlap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}"
        XCTAssertEqual(readError(file(header: overlap, data: [UInt8](repeating: 0, count: 24))),
                       .overlappingData(file: p, tensor: "b", other: "a"))
        let gap = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}"
        XCTAssertEqual(readError(file(header: gap, data: [UInt8](repeating: 0, count: 24))),
                       .gapInData(file: p, tensor: "b", expectedBegin: 16, begin: 20))
        let late = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}"
        XCTAssertEqual(readError(file(header: late, data: [UInt8](repeating: 0, count: 8))),
                       .gapInData(file: p, tensor: "a", expectedBegin: 0, begin: 4))
        let short = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}"
        XCTAssertEqual(readError(file(header: short, data: [UInt8](repeating: 0, count: 10))),
                       .trailingData(file: p, unusedBytes: 6))
    }

    func testSizeThatDisagreesWithDtypeAndShapeIsRejected() {
        let p = path("bad.safetensors")
        let wrong = "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}"
        XCTAssertEqual(readError(file(header: wrong, data: [UInt8](repeating: 0, count: 8))),
                       .sizeMismatch(file: p, tensor: "ids", expectedBytes: 16, actualBytes: 8))
        let unknown = "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}"
        XCTAssertEqual(readError(file(header: unknown, data: [0, 0, 0, 0])),
                       .unknownDType(file: p, tensor: "w", dtype: "F16"))
        let huge = "{\"w\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}"
        guard case .invalidEntry(p, "w", _)? = readError(file(header: huge, data: [UInt8](repeating: 0, count: 8))) else {
            return XCTFail("an overflowing shape must be an invalid entry")
        }
    }

    func testMalformedJSONAndEntriesAreRejected() {
        let p = path("bad.safetensors")
        let cases: [(header: String, isExpected: (SafeTensorsError?) -> Bool)] = [
            ("{\"a\": {\"dtype\": ", { if case .invalidHeader(p, _)? = $0 { return true }; return false }),
            ("[1, 2, 3]", { if case .invalidHeader(p, _)? = $0 { return true }; return false }),
            ("{\"a\": nul}", { if case .invalidHeader(p, _)? = $0 { return true }; return false }),
            ("{\"a\": 3}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"shape\": [], \"data_offsets\": [0, 0]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"dtype\": \"U8\", \"shape\": [-1], \"data_offsets\": [0, 0]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"dtype\": \"U8\", \"shape\": [1.5], \"data_offsets\": [0, 0]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"dtype\": \"U8\", \"shape\": [], \"data_offsets\": [true, 1]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"dtype\": \"U8\", \"shape\": [], \"data_offsets\": [1, 0]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"a\": {\"dtype\": \"U8\", \"shape\": [], \"data_offsets\": [0]}}", { if case .invalidEntry(p, "a", _)? = $0 { return true }; return false }),
            ("{\"__metadata__\": {\"epoch\": 3}}", { if case .invalidMetadata(p, _)? = $0 { return true }; return false }),
            ("{\"__metadata__\": [\"x\"]}", { if case .invalidMetadata(p, _)? = $0 { return true }; return false }),
        ]
        for (header, isExpected) in cases {
            let e = readError(file(header: header, data: []))
            XCTAssertTrue(isExpected(e), "\(header) gave \(String(describing: e))")
        }
        var invalidUTF8 = file(header: "{\"a\":\"xx\"}", data: [])
        invalidUTF8[14] = 0xFF
        guard case .invalidHeader(p, _)? = readError(invalidUTF8) else { return XCTFail("invalid UTF-8 must be an invalid header") }
    }

    func testErrorDescriptionsNameTheFileAndTheTensor() {
        let p = path("bad.safetensors")
        let wrong = "{\"layer3.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}"
        let description = readError(file(header: wrong, data: [UInt8](repeating: 0, count: 8)))?.description ?? ""
        XCTAssertTrue(description.contains(p), description)
        XCTAssertTrue(description.contains("layer3.weight"), description)
        XCTAssertTrue(description.contains("12"), description)
        XCTAssertTrue(description.hasSuffix("."), description)
        let missing = error { _ = try SafeTensors.read(self.path("nope.safetensors")) }
        XCTAssertEqual(missing, .io(file: path("nope.safetensors"), operation: "open", errno: ENOENT))
        XCTAssertTrue(missing?.description.contains("No such file") ?? false, missing?.description ?? "")
    }

    func testReadingAMissingTensorOrAsTheWrongTypeFails() throws {
        let p = path("ok.safetensors")
        try SafeTensors.write(sample, to: p)
        let file = try SafeTensors.read(p)
        XCTAssertEqual(error { _ = try file.floats("nope") }, .missingTensor(file: p, tensor: "nope"))
        XCTAssertEqual(error { _ = try file.floats("adam.step") }, .wrongDType(file: p, tensor: "adam.step", stored: .i64, requested: .f32))
        var small = [Float](repeating: 0, count: 5)
        XCTAssertEqual(error { try small.withUnsafeMutableBytes { try file.copy("layer0.weight", into: $0) } },
                       .sizeMismatch(file: p, tensor: "layer0.weight", expectedBytes: 20, actualBytes: 24))
    }

    // MARK: writer

    func testWriterRejectsInvalidTensorsBeforeCreatingAnything() {
        let p = path("never.safetensors")
        XCTAssertEqual(error { try SafeTensors.write([SafeTensorsEntry(name: "a", shape: [1], floats: [1]),
                                                     SafeTensorsEntry(name: "a", shape: [1], floats: [2])], to: p) },
                       .duplicateName(file: p, tensor: "a"))
        guard case .invalidTensor(p, "w", _)? = error({ try SafeTensors.write([SafeTensorsEntry(name: "w", shape: [2, 2], floats: [1, 2, 3])], to: p) }) else {
            return XCTFail("a byte count that disagrees with the shape must be rejected")
        }
        guard case .invalidTensor(p, "__metadata__", _)? = error({ try SafeTensors.write([SafeTensorsEntry(name: "__metadata__", shape: [], floats: [1])], to: p) }) else {
            return XCTFail("the reserved name must be rejected")
        }
        guard case .invalidTensor(p, "huge", _)? = error({ try SafeTensors.write([SafeTensorsEntry(name: "huge", shape: [1 << 40, 1 << 40], floats: [])], to: p) }) else {
            return XCTFail("a shape whose byte count overflows must be rejected")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    func testAtomicWriteReplacesTheFileAndLeavesNoTemporaryFile() throws {
        let p = path("ckpt.safetensors")
        try SafeTensors.write([SafeTensorsEntry(name: "a", shape: [1], floats: [1])], to: p)
        try SafeTensors.write([SafeTensorsEntry(name: "b", shape: [2], floats: [2, 3])], to: p)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["ckpt.safetensors"])
        XCTAssertEqual(try SafeTensors.read(p).names, ["b"])
    }

    func testWriteIntoARemovedDirectoryFailsCleanly() throws {
        let gone = path("gone")
        try FileManager.default.createDirectory(atPath: gone, withIntermediateDirectories: false)
        try FileManager.default.removeItem(atPath: gone)
        guard case .io(gone + "/x.safetensors", _, ENOENT)? = error({
            try SafeTensors.write([SafeTensorsEntry(name: "a", shape: [1], floats: [1])], to: gone + "/x.safetensors")
        }) else { return XCTFail("writing into a removed directory must fail with ENOENT") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), [])
    }

    /// A write that fails half-way (here: the file-size limit, which applies even to root) must
    /// leave the previous checkpoint byte for byte and no temporary file behind.
    func testFailedWriteLeavesTheExistingFileIntact() throws {
        let p = path("ckpt.safetensors")
        try SafeTensors.write([SafeTensorsEntry(name: "old", shape: [2], floats: [4, 5])], to: p)
        let before = try Data(contentsOf: URL(fileURLWithPath: p))

        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 4096
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        let big = [Float](repeating: 1, count: 1 << 16)
        let failure = error { try SafeTensors.write([SafeTensorsEntry(name: "new", shape: [1 << 16], floats: big)], to: p) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)

        XCTAssertEqual(failure, .io(file: p, operation: "write", errno: EFBIG))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["ckpt.safetensors"])
        XCTAssertEqual(try SafeTensors.read(p).floats("old"), [4, 5])
    }
}
