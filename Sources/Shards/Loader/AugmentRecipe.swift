/// The augmentation a run asks for, by name: `none`, `crop` (a random crop of the image padded
/// with zeros, safe for any image) or `crop,flip` (plus a horizontal flip with p = 0.5: right
/// for clothes, wrong for digits, text or anything with a handedness).
/// The crop's padding follows the image size (`cropPadding(height:width:)`).
public enum AugmentRecipe: String, Sendable, Equatable, CaseIterable, Codable {
    case none
    case crop
    case cropFlip = "crop,flip"

    /// Decodes the name, or the `true`/`false` of configurations written before recipes had
    /// names: those runs used crop and flip, or nothing.
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let legacy = try? container.decode(Bool.self) {
            self = legacy ? .cropFlip : .none
            return
        }
        let name = try container.decode(String.self)
        guard let recipe = AugmentRecipe(rawValue: name) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown augmentation \"\(name)\" (none, crop or crop,flip)")
        }
        self = recipe
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Zero padding on each side before the crop: about a fourteenth of the smaller side, so 2
    /// for 28 x 28 and 32 x 32 images (the reference code's value); 0 for images under 8
    /// pixels on a side (feature vectors stored as 1 x 1 x D are never cropped).
    public static func cropPadding(height: Int, width: Int) -> Int {
        let side = min(height, width)
        return side < 8 ? 0 : max(1, side / 14)
    }

    /// The loader's augmentation for images of this size, or nil for none.
    public func augmentation(height: Int, width: Int) -> Augmentation? {
        let padding = AugmentRecipe.cropPadding(height: height, width: width)
        switch self {
        case .none: return nil
        case .crop: return padding > 0 ? Augmentation(cropPadding: padding, horizontalFlip: false) : nil
        case .cropFlip: return Augmentation(cropPadding: padding, horizontalFlip: true)
        }
    }
}
