import MemoryLedger

/// One series of live bytes per ledger category, all the same length as their timeline.
/// In JSON it is an object keyed by category name.
public struct CategorySeries: Equatable, Sendable, Codable {
    /// Indexed by `Category.rawValue`.
    public private(set) var values: [[Int]]

    /// Empty series for every category.
    public init() {
        values = Array(repeating: [], count: Category.allCases.count)
    }

    public subscript(_ category: Category) -> [Int] {
        get { values[category.rawValue] }
        set { values[category.rawValue] = newValue }
    }

    /// Appends one point: `live` is indexed by `Category.rawValue`.
    mutating func append(_ live: [Int]) {
        for c in values.indices { values[c].append(live[c]) }
    }

    /// The per-category values at point `index`.
    public func point(_ index: Int) -> CategoryBytes {
        CategoryBytes(values.map { $0[index] })
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CategoryCodingKey.self)
        for category in Category.allCases {
            try container.encode(self[category], forKey: CategoryCodingKey(category))
        }
    }

    /// A category missing from the document reads as zeros of the common length, so every
    /// series still has one value per timeline point.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CategoryCodingKey.self)
        self.init()
        var missing: [Category] = []
        for category in Category.allCases {
            if let series = try container.decodeIfPresent([Int].self, forKey: CategoryCodingKey(category)) {
                self[category] = series
            } else {
                missing.append(category)
            }
        }
        let length = values.map(\.count).max() ?? 0
        for category in missing { self[category] = Array(repeating: 0, count: length) }
    }
}
