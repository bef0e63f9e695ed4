// Trains a small MLP with local losses and prints what the memory ledger saw.
//   swift run TrainMLP [DATASET_DIR]      (no folder: a tiny synthetic dataset is written first)
import Foundation
import Layers
import Shards
import Training

let work = NSTemporaryDirectory() + "layerwise-example-\(getpid())"
let data = CommandLine.arguments.dropFirst().first ?? work + "/data"
if CommandLine.arguments.count < 2 {
    // 8x8 images of 4 classes: class c is bright in quadrant c, over random noise.
    for (split, count) in [("train", 1024), ("test", 256)] {
        var images = LabeledImages(height: 8, width: 8, classCount: 4)
        for i in 0..<count {
            let label = i % 4
            images.append(pixels: (0..<64).map { p in
                (p / 32) * 2 + (p % 8) / 4 == label ? UInt8.random(in: 90...255) : UInt8.random(in: 0...120)
            }, label: label)
        }
        try images.write(to: data, split: split)
    }
}

var config = TrainingConfig(model: .mlp(layers: 2, hidden: 64, loss: .predsim), data: data, run: work + "/run")
config.epochs = Int(ProcessInfo.processInfo.environment["EPOCHS"] ?? "") ?? 3
config.batchSize = 64
config.milestones = []
let trainer = try Trainer(config: config, showProgress: false)
try trainer.run { step in
    if step.stepInEpoch % max(1, step.stepsInEpoch / 4) == 0 {   // four lines an epoch
        print("epoch \(step.epoch) step \(step.stepInEpoch)/\(step.stepsInEpoch): loss \(step.loss), block losses \(step.blockLosses)")
    }
}
print(trainer.memorySummary())
try? FileManager.default.removeItem(atPath: work)
