/// Why an `InferenceNetwork` could not be built from the tensors it was given.
public enum InferenceNetworkError: Error, CustomStringConvertible, Equatable {
    /// The model needs a tensor of this name and the source has none.
    case missingTensor(name: String)
    /// The source's tensor has another shape than the model needs.
    case shapeMismatch(name: String, shape: [Int], expected: [Int])

    public var description: String {
        switch self {
        case let .missingTensor(name):
            return "the model needs tensor \(name), which is missing"
        case let .shapeMismatch(name, shape, expected):
            return "tensor \(name) has shape \(shape), but the model needs \(expected)"
        }
    }
}
