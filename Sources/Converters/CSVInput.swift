#if canImport(Glibc)
import Glibc
#endif
import Shards

/// A CSV (or .csv.gz) file of numeric rows: one integer label column and numeric features.
/// The header row is detected (a first row with a non-numeric cell) unless stated. Features
/// become an `image` field of float32 (default) or uint8, shape [1, 1, D] unless `shape` says
/// otherwise (for example [28, 28, 1] for MNIST-as-CSV). Rows with another number of cells
/// than the first are an error naming the line.
public struct CSVInput: RecordInput {
    /// Which column holds the label.
    public enum LabelColumn: Sendable, Equatable {
        case index(Int)
        case name(String)
    }

    public let path: String
    public let delimiter: UInt8
    public let featureType: FieldType
    public let imageShape: [Int]
    public let hasHeader: Bool
    public let columnCount: Int
    /// The label's column index (0-based).
    public let labelIndex: Int
    public let recordCount: Int

    /// Scans the file once: header, column count, consistent rows, record count.
    public init(path: String, labelColumn: LabelColumn = .index(0), header: Bool? = nil,
                featureType: FieldType = .float32, shape: [Int]? = nil, delimiter: Character = ",") throws {
        guard featureType == .float32 || featureType == .uint8 else {
            throw ShardError.invalidOption(name: "dtype", problem: "CSV features can be float32 or uint8, not \(featureType.rawValue)")
        }
        guard let d = delimiter.asciiValue else { throw ShardError.invalidOption(name: "delimiter", problem: "must be one ASCII character") }
        self.path = path
        self.delimiter = d
        self.featureType = featureType
        let lines = try LineReader(path: path)
        var headerNames: [String]?
        var columns = 0
        var rows = 0
        var detectedHeader = false
        while let line = try lines.next() {
            if isBlank(line) { continue }
            let cells = splitCells(line, delimiter: d)
            if columns == 0 {
                columns = cells.count
                let numeric = cells.allSatisfy { parseNumber($0) != nil }
                detectedHeader = header ?? !numeric
                if detectedHeader {
                    headerNames = cells.map { cellText($0) }
                    continue
                }
            } else if cells.count != columns {
                throw ShardError.invalidLine(file: path, line: lines.lineNumber,
                                             problem: "the row has \(cells.count) cells but the first row has \(columns)")
            }
            rows += 1
        }
        hasHeader = detectedHeader
        guard columns >= 2 else {
            throw ShardError.invalidInput(file: path, problem: columns == 0 ? "it has no rows" : "rows need a label and at least one feature")
        }
        switch labelColumn {
        case .index(let i):
            guard i >= 0 && i < columns else { throw ShardError.invalidOption(name: "label column", problem: "\(i) is outside 0..<\(columns)") }
            labelIndex = i
        case .name(let name):
            guard let names = headerNames else {
                throw ShardError.invalidOption(name: "label column", problem: "\"\(name)\" names a column but \(path) has no header row")
            }
            guard let i = names.firstIndex(of: name) else {
                throw ShardError.invalidOption(name: "label column", problem: "\(path) has no column \"\(name)\"")
            }
            labelIndex = i
        }
        columnCount = columns
        recordCount = rows
        let features = columns - 1
        if let shape {
            guard shape.allSatisfy({ $0 > 0 }), shape.reduce(1, *) == features else {
                throw ShardError.invalidOption(name: "shape", problem: "\(shape) does not hold the \(features) features of each row")
            }
            imageShape = shape
        } else {
            imageShape = [1, 1, features]
        }
    }

    public var fields: [Field] { imageFields(type: featureType, shape: imageShape) }

    public var provenance: SourceProvenance {
        SourceProvenance(format: "csv", files: [sourceFile(path)],
                         options: ["labelColumn": "\(labelIndex)", "header": "\(hasHeader)", "dtype": featureType.rawValue])
    }

    public func labelFile(ofRecord index: Int) -> String { path }

    public func makeReader() throws -> RecordInputReader { try CSVReader(self) }
}

/// One pass over the CSV rows, parsing each cell.
final class CSVReader: RecordInputReader {
    let input: CSVInput
    let lines: LineReader
    var skippedHeader = false
    var done = 0

    init(_ input: CSVInput) throws {
        self.input = input
        lines = try LineReader(path: input.path)
    }

    func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        let features = input.columnCount - 1
        let recordSize = features * input.featureType.size + 4
        let capacity = destination.count / recordSize
        var n = 0
        while n < capacity, let line = try lines.next() {
            if isBlank(line) { continue }
            if input.hasHeader && !skippedHeader { skippedHeader = true; continue }
            let slot = destination.baseAddress! + n * recordSize
            let cells = splitCells(line, delimiter: input.delimiter)
            guard cells.count == input.columnCount else {
                throw ShardError.invalidLine(file: input.path, line: lines.lineNumber,
                                             problem: "the row has \(cells.count) cells but the first row has \(input.columnCount)")
            }
            var feature = 0
            for (column, cell) in cells.enumerated() {
                guard let value = parseNumber(cell) else {
                    throw ShardError.invalidLine(file: input.path, line: lines.lineNumber,
                                                 problem: "cell \(column + 1) (\"\(cellText(cell))\") is not a number")
                }
                if column == input.labelIndex {
                    guard value == value.rounded(), let label = Int32(exactly: value) else {
                        throw ShardError.invalidLine(file: input.path, line: lines.lineNumber, problem: "the label \(cellText(cell)) is not an integer")
                    }
                    guard label >= 0 else {
                        throw ShardError.invalidLine(file: input.path, line: lines.lineNumber, problem: "the label \(label) is negative")
                    }
                    storeLabel(label, at: slot + features * input.featureType.size)
                } else if input.featureType == .uint8 {
                    guard value == value.rounded(), value >= 0, value <= 255 else {
                        throw ShardError.invalidLine(file: input.path, line: lines.lineNumber,
                                                     problem: "cell \(column + 1) (\(cellText(cell))) does not fit uint8")
                    }
                    slot.storeBytes(of: UInt8(value), toByteOffset: feature, as: UInt8.self)
                    feature += 1
                } else {
                    slot.storeBytes(of: Float(value).bitPattern.littleEndian, toByteOffset: feature * 4, as: UInt32.self)
                    feature += 1
                }
            }
            n += 1
        }
        done += n
        if n == 0 && done < input.recordCount {
            throw ShardError.invalidInput(file: input.path, problem: "it changed while being read: \(done) of \(input.recordCount) rows")
        }
        return n
    }
}

/// Cells of a line split at `delimiter` (no quoting: numeric CSV only; quotes are trimmed).
func splitCells(_ line: UnsafeRawBufferPointer, delimiter: UInt8) -> [UnsafeRawBufferPointer] {
    var cells: [UnsafeRawBufferPointer] = []
    var start = 0
    for i in 0..<line.count where line[i] == delimiter {
        cells.append(trimCell(UnsafeRawBufferPointer(rebasing: line[start ..< i])))
        start = i + 1
    }
    cells.append(trimCell(UnsafeRawBufferPointer(rebasing: line[start...])))
    return cells
}

private func trimCell(_ cell: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var s = 0, e = cell.count
    while s < e && (cell[s] == 0x20 || cell[s] == 0x09 || cell[s] == 0x22) { s += 1 }
    while e > s && (cell[e - 1] == 0x20 || cell[e - 1] == 0x09 || cell[e - 1] == 0x22) { e -= 1 }
    return UnsafeRawBufferPointer(rebasing: cell[s ..< e])
}

func isBlank(_ line: UnsafeRawBufferPointer) -> Bool { line.allSatisfy { $0 == 0x20 || $0 == 0x09 } }

func cellText(_ cell: UnsafeRawBufferPointer) -> String { String(decoding: cell, as: UTF8.self) }

/// A decimal number (strtod syntax: sign, digits, point, exponent), or nil if the whole cell is not one.
func parseNumber(_ cell: UnsafeRawBufferPointer) -> Double? {
    guard !cell.isEmpty, cell.count < 64 else { return nil }
    // Refuse what strtod accepts but CSV data should not hold (hex, inf, nan, leading spaces).
    for b in cell where !((b >= 0x30 && b <= 0x39) || b == 0x2E || b == 0x2D || b == 0x2B || b == 0x65 || b == 0x45) { return nil }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text -> Double? in
        for i in 0..<cell.count { text[i] = CChar(bitPattern: cell[i]) }
        text[cell.count] = 0
        var end: UnsafeMutablePointer<CChar>?
        let value = strtod(text.baseAddress!, &end)
        guard let end, end - text.baseAddress! == cell.count else { return nil }
        return value
    }
}
