import MemoryLedger

/// One fixed colour per ledger category, the same in every chart and report, so a reader who
/// learnt that activations are red does not have to look at the legend again.
public enum CategoryPalette {
    /// CSS hex colour of `category`.
    public static func color(_ category: Category) -> String {
        switch category {
        case .weights: return "#4e79a7"
        case .headWeights: return "#a0cbe8"
        case .frozenWeights: return "#2f4b6c"
        case .gradients: return "#f28e2b"
        case .optimizerState: return "#ffbe7d"
        case .input: return "#59a14f"
        case .activations: return "#e15759"
        case .activationGrads: return "#ff9d9a"
        case .lossTemp: return "#b07aa1"
        case .workspace: return "#9c755f"
        case .loader: return "#bab0ac"
        }
    }
}
