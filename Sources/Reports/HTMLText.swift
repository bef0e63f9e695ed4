/// Escaping for text placed in HTML and SVG (element content and quoted attribute values).
enum HTMLText {
    /// Replaces the five characters that could end an element, an attribute or an entity.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A table with a header row; cells are escaped here, numbers (all but the first column,
    /// and the columns in `leftAligned`) get the right-aligned class.
    static func table(header: [String], rows: [[String]], leftAligned: Set<Int> = []) -> String {
        func cells(_ row: [String], tag: String) -> String {
            row.enumerated().map { i, cell in
                let numeric = i > 0 && !leftAligned.contains(i)
                return "<\(tag)\(numeric ? " class=\"num\"" : "")>\(escape(cell))</\(tag)>"
            }.joined()
        }
        return "<table>\n<thead><tr>\(cells(header, tag: "th"))</tr></thead>\n<tbody>\n"
            + rows.map { "<tr>\(cells($0, tag: "td"))</tr>\n" }.joined()
            + "</tbody>\n</table>\n"
    }
}
