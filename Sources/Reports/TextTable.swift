/// A plain-text table with aligned columns: the first column left-aligned (names), the others
/// right-aligned (numbers), two spaces between columns and a dashed rule under the header.
/// Every rendered line has the same width, so tables stay readable in a terminal or a log.
public struct TextTable {
    public var header: [String]
    public private(set) var rows: [[String]] = []
    /// Columns to align left besides the first (for example a name column in the middle).
    public var leftAligned: Set<Int>

    public init(header: [String], leftAligned: Set<Int> = []) {
        self.header = header
        self.leftAligned = leftAligned.union([0])
    }

    /// A table holding `contents`.
    public init(_ contents: TableContents) {
        self.init(header: contents.header, leftAligned: contents.leftAligned)
        for row in contents.rows { add(row) }
    }

    /// Appends a row; missing cells are blank, extra cells are an error.
    public mutating func add(_ row: [String]) {
        precondition(row.count <= header.count, "row has more cells than the header")
        rows.append(row + Array(repeating: "", count: header.count - row.count))
    }

    /// The rendered lines, each prefixed by `indent`, without trailing newline.
    public func lines(indent: String = "") -> [String] {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { i, cell -> String in
                let fill = String(repeating: " ", count: widths[i] - cell.count)
                return leftAligned.contains(i) ? cell + fill : fill + cell
            }
            return indent + padded.joined(separator: "  ")
        }
        let width = widths.reduce(0, +) + 2 * (widths.count - 1)
        return [line(header), indent + String(repeating: "-", count: width)] + rows.map(line)
    }

    /// The table as one string, lines joined by newlines.
    public func render(indent: String = "") -> String {
        lines(indent: indent).joined(separator: "\n")
    }
}
