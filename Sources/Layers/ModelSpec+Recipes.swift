import Tensors

extension ModelSpec {
    /// A multilayer perceptron of `layers` hidden Linear blocks of `hidden` units each, plus the
    /// output layer, trained with `loss`.
    ///
    /// The loss decides the rest as the reference recipes do (and as `layerwise train` does):
    /// beta is ``LossKind/defaultBeta``, the nonlinearity is LeakyReLU for losses with a sim term
    /// and ReLU otherwise, dropout is 0.025. The input shape and the class count are placeholders
    /// until a trainer reads them from the dataset.
    ///
    /// ```swift
    /// let paper = ModelSpec.mlp()                                   // 3 x 1024, predsim
    /// let small = ModelSpec.mlp(layers: 2, hidden: 128, loss: .pred)
    /// ```
    public static func mlp(layers: Int = 3, hidden: Int = 1024, loss: LossKind = .predsim) -> ModelSpec {
        var spec = ModelSpec()
        spec.kind = .mlp
        spec.numLayers = layers
        spec.numHidden = hidden
        spec.useRecipeDefaults(for: loss)
        spec.dropout = 0.025
        return spec
    }

    /// A VGG-style convolutional network (`vgg8b` or `vgg11b`) whose conv widths are scaled by
    /// `featMult`, followed by one Linear block of `hidden` units and the output layer.
    ///
    /// Beta and the nonlinearity follow the loss as in ``mlp(layers:hidden:loss:)``; dropout is
    /// 0.1 and the pred heads pool to at most 1024 features (the paper's vgg8b recipe).
    /// - Precondition: `kind` is not ``Kind/mlp``.
    public static func vgg(_ kind: Kind = .vgg8b, featMult: Float = 1, hidden: Int = 1024,
                           loss: LossKind = .predsim) -> ModelSpec {
        precondition(kind != .mlp, "ModelSpec.vgg builds the conv models; use ModelSpec.mlp for the mlp")
        var spec = ModelSpec()
        spec.kind = kind
        spec.featMult = featMult
        spec.numHidden = hidden
        spec.useRecipeDefaults(for: loss)
        spec.dropout = 0.1
        return spec
    }

    /// Sets the loss with the beta and the nonlinearity its reference recipe uses.
    private mutating func useRecipeDefaults(for loss: LossKind) {
        self.loss = loss
        beta = loss.defaultBeta
        nonlinearity = Nonlinearity(rawValue: loss.defaultNonlinearity) ?? .relu
    }
}
