import Layers

extension TrainingConfig {
    /// A configuration that trains `model` on the shard dataset in `data` and writes its run
    /// folder (`config.json`, `metrics.jsonl`, checkpoints) to `run`.
    ///
    /// Everything else keeps the paper's Fashion-MNIST recipe: 200 epochs, batch 128, Adam at
    /// learning rate 5e-4, decayed x 0.25 at epochs 100, 150, 175 and 188; set the properties
    /// to change them. The model's input shape and class count come from the dataset.
    ///
    /// ```swift
    /// var config = TrainingConfig(model: .mlp(layers: 2, hidden: 128), data: "data/fashion-mnist", run: "runs/small")
    /// config.epochs = 3
    /// ```
    public init(model: ModelSpec, data: String, run: String) {
        self.init()
        self.model = model
        self.data = data
        self.run = run
    }
}
