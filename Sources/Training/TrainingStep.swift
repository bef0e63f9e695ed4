import Layers

/// What one training step did, as ``Trainer/run(onStep:)`` reports it after the step's update.
///
/// The losses are batch means of this step alone; the per-epoch means are in the
/// ``EpochMetrics`` that `run` returns.
public struct TrainingStep: Sendable, Equatable {
    /// The epoch this step belongs to, counting from 1.
    public var epoch: Int
    /// Steps done since the run started, this one included (counting from 1; a resumed run
    /// continues its count).
    public var step: Int
    /// This step's number inside its epoch, counting from 1.
    public var stepInEpoch: Int
    /// Steps in a whole epoch (the last batch may be smaller than the others).
    public var stepsInEpoch: Int
    /// Examples in this step's batch.
    public var examples: Int
    /// The learning rate this step used (after the milestone schedule).
    public var learningRate: Float
    /// The output layer's cross-entropy on this batch (in local mode with a mixed loss, before
    /// its 1 - beta scale).
    public var loss: Float
    /// Examples of this batch that the output layer classified correctly.
    public var correct: Int
    /// Each hidden block's local loss on this batch, in block order (pred and sim terms as
    /// weighted in training); empty in backprop mode, which has no local losses.
    public var blockLosses: [Float]

    /// Training error of this batch in percent (dropout and augmentation on).
    public var error: Double { examples == 0 ? 0 : 100 * Double(examples - correct) / Double(examples) }

    init(epoch: Int, step: Int, stepInEpoch: Int, stepsInEpoch: Int, examples: Int, learningRate: Float, stats: StepStats) {
        self.epoch = epoch
        self.step = step
        self.stepInEpoch = stepInEpoch
        self.stepsInEpoch = stepsInEpoch
        self.examples = examples
        self.learningRate = learningRate
        loss = stats.outputLoss
        correct = stats.correct
        blockLosses = stats.blocks.map(\.loss)
    }
}
