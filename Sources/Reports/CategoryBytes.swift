import MemoryLedger

/// Bytes per ledger category. In JSON it is an object keyed by category name, every category
/// present (zeros included) so readers need not know which categories exist.
public struct CategoryBytes: Equatable, Sendable, Codable {
    /// Indexed by `Category.rawValue`.
    public private(set) var values: [Int]

    /// All categories at zero.
    public init() {
        values = Array(repeating: 0, count: Category.allCases.count)
    }

    /// From an array indexed by `Category.rawValue` (the layout of `LedgerSnapshot.byCategory`).
    public init(_ values: [Int]) {
        precondition(values.count == Category.allCases.count, "one value per category expected")
        self.values = values
    }

    public subscript(_ category: Category) -> Int {
        get { values[category.rawValue] }
        set { values[category.rawValue] = newValue }
    }

    /// Sum over all categories.
    public var total: Int { values.reduce(0, +) }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CategoryCodingKey.self)
        for category in Category.allCases {
            try container.encode(self[category], forKey: CategoryCodingKey(category))
        }
    }

    /// Missing categories read as 0 and unknown names are ignored, so a document from a build
    /// with more or fewer categories still loads.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CategoryCodingKey.self)
        self.init()
        for category in Category.allCases {
            self[category] = try container.decodeIfPresent(Int.self, forKey: CategoryCodingKey(category)) ?? 0
        }
    }
}

/// A JSON key that is a category's name.
struct CategoryCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ category: Category) { stringValue = category.description }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
