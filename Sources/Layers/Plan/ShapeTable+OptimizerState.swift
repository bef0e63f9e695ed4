/// The optimizer state a layer's optimizer allocates, per tensor (8-bit state has one scale per
/// block of each tensor, the last block partial, so a layer's total alone cannot say it).
extension ShapeTable {
    /// Element counts of the tensors the layer's optimizer trains, in `HiddenBlock`'s order:
    /// the map's weight and bias, BatchNorm's weight and bias, then (local modes) the heads'
    /// trained tensors as `LocalHeads` makes them; the output layer's weight and bias.
    public func trainedTensorSizes(_ l: Layer) -> [Int] {
        let out = l.channels
        switch l.kind {
        case .output:
            return [out * l.input[0], out]
        case .conv, .linear:
            let mapWeights = l.kind == .conv ? out * l.geometry!.patchSize : out * l.input[0]
            var sizes = [mapWeights, out, out, out]
            let loss = spec.loss
            guard loss.isLocal else { return sizes }
            let features = l.kind == .conv ? l.pooling!.features : out
            if loss.usesPred {
                let rows = loss.isBackpropFree ? LossKind.projectionSize : spec.classes
                sizes += [rows * features, rows]
            }
            if loss.usesSim && !loss.isBackpropFree { sizes.append(l.kind == .conv ? out * out * 9 : out * out) }
            assert(sizes.reduce(0, +) == l.params + l.trainedHeadParams, "trained tensors of \(l.name) disagree with its counts")
            return sizes
        }
    }

    /// Bytes of the layer's optimizer state under `optimizer` (`OptimizerSettings.stateBytes`).
    public func optimizerStateBytes(_ l: Layer, optimizer: OptimizerSettings) -> Int {
        optimizer.stateBytes(parameters: trainedTensorSizes(l))
    }
}
