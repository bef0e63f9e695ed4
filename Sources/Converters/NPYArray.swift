import Foundation
import Shards
/// The header of a NumPy `.npy` file (format versions 1, 2 and 3): element type, memory order
/// and shape, and where the data starts.
struct NPYArray {
    enum Kind: Equatable { case unsignedInt, signedInt, float }

    let path: String
    let kind: Kind
    /// Bytes per element.
    let itemSize: Int
    let shape: [Int]
    /// Offset of the first data byte.
    let dataOffset: Int
    /// The dtype string as written (`<f4`, `|u1`, ...), for messages.
    let descr: String

    var elementCount: Int { shape.reduce(1, *) }

    /// Reads and parses the header; checks the data is C order, little-endian, and fully present.
    init(path: String) throws {
        self.path = path
        let file = try InputFile(path: path)
        func invalid(_ problem: String) -> ShardError { .invalidInput(file: path, problem: problem) }
        let preamble = try file.readExactly(8, expectedTotal: 10)
        guard Array(preamble[0 ..< 6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw invalid("bad magic: not a .npy file (expected \\x93NUMPY)")
        }
        let major = preamble[6]
        let headerLength: Int
        switch major {
        case 1:
            let b = try file.readExactly(2, expectedTotal: 10)
            headerLength = Int(b[0]) | Int(b[1]) << 8
        case 2, 3:
            let b = try file.readExactly(4, expectedTotal: 12)
            headerLength = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
        default:
            throw invalid("unsupported .npy format version \(major)")
        }
        guard headerLength < 1 << 20 else { throw invalid("header length \(headerLength) is implausible") }
        let prefix = major == 1 ? 10 : 12
        let headerBytes = try file.readExactly(headerLength, expectedTotal: prefix + headerLength)
        let header = String(decoding: headerBytes, as: UTF8.self)
        dataOffset = prefix + headerLength

        guard let descr = NPYArray.value(of: "descr", in: header).flatMap(NPYArray.unquote) else {
            throw invalid("the header has no 'descr'")
        }
        self.descr = descr
        guard let order = NPYArray.value(of: "fortran_order", in: header) else { throw invalid("the header has no 'fortran_order'") }
        if order.hasPrefix("True") {
            throw invalid("the array is in Fortran order; save it in C order (numpy.ascontiguousarray) and convert again")
        }
        guard let shapeText = NPYArray.value(of: "shape", in: header), shapeText.hasPrefix("(") else { throw invalid("the header has no 'shape'") }
        let inner = shapeText.dropFirst().prefix { $0 != ")" }
        var dims = [Int]()
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw invalid("the shape \(shapeText) is not a tuple of sizes") }
            dims.append(d)
        }
        shape = dims

        // dtype: byte order, kind letter, size.
        let chars = Array(descr)
        guard chars.count >= 3, let size = Int(String(chars[2...])) else { throw invalid("unsupported dtype '\(descr)'") }
        if chars[0] == ">" && size > 1 { throw invalid("dtype '\(descr)' is big-endian; only little-endian arrays are supported") }
        switch chars[1] {
        case "u": kind = .unsignedInt
        case "i": kind = .signedInt
        case "f": kind = .float
        case "b" where size == 1: kind = .unsignedInt  // bool
        default: throw invalid("unsupported dtype '\(descr)'")
        }
        guard [1, 2, 4, 8].contains(size), kind != .float || size == 4 || size == 8 else { throw invalid("unsupported dtype '\(descr)'") }
        itemSize = size

        var count = 1
        for d in dims {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            guard !o, m < 1 << 40 else { throw invalid("the shape \(dims) is too large") }
            count = m
        }
        let needed = dataOffset + count * itemSize
        if !file.isCompressed && file.sizeOnDisk < needed {
            throw ShardError.truncatedInput(file: path, expectedBytes: needed, actualBytes: file.sizeOnDisk)
        }
    }

    /// The raw text after `'key':` up to the next top-level comma or the closing brace.
    static func value(of key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        var depth = 0
        var end = rest.startIndex
        while end < rest.endIndex {
            let c = rest[end]
            if c == "(" || c == "[" { depth += 1 }
            if c == ")" || c == "]" { depth -= 1 }
            if depth == 0 && (c == "," || c == "}") { break }
            end = rest.index(after: end)
        }
        return String(rest[rest.startIndex ..< end]).trimmingCharacters(in: .whitespaces)
    }

    static func unquote(_ s: String) -> String? {
        guard s.count >= 2, let f = s.first, f == "'" || f == "\"", s.last == f else { return nil }
        return String(s.dropFirst().dropLast())
    }

    /// Opens the file positioned at the first data byte.
    func openData() throws -> InputFile {
        let file = try InputFile(path: path)
        try file.skip(dataOffset, expectedTotal: dataOffset)
        return file
    }
}
