/// How a `BatchLoader` walks a split: batch size, shuffling, memory, threads, augmentation and
/// normalisation. A value type, so the trainer can store it next to its own configuration.
public struct LoaderConfig: Sendable, Equatable, Codable {
    /// Records per batch.
    public var batchSize: Int
    /// Shuffle with the block pool (on) or read records in storage order (off).
    public var shuffle: Bool
    /// Seed of every random choice the loader makes (block order, record order, slot draws,
    /// augmentation), combined with the epoch number.
    public var seed: UInt64
    /// K: decoded blocks the shuffle draws from at once. Larger mixes better and costs one block
    /// of memory per slot. Ignored (1) when `shuffle` is off.
    public var poolBlocks: Int
    /// Extra decoded blocks the background threads may hold ready ahead of the consumer.
    public var prefetchBlocks: Int
    /// Background decode threads. 0 decodes on the caller's thread when a block is needed
    /// (no read-ahead); the output is the same for every value.
    public var threads: Int
    /// Random crop and flip applied per record, or nil for none.
    public var augment: Augmentation?
    /// Drop the last batch of an epoch when it is smaller than `batchSize` (default: keep it).
    public var dropLast: Bool
    /// Per-channel mean and standard deviation in the scaled pixel space (uint8 pixels are
    /// divided by 255 first, as torchvision's ToTensor does). One value applies to every
    /// channel. Nil: computed over the split with one pass when the loader is created.
    public var mean: [Float]?
    public var std: [Float]?

    public init(batchSize: Int = 128, shuffle: Bool = true, seed: UInt64 = 0, poolBlocks: Int = 16,
                prefetchBlocks: Int = 4, threads: Int = 1, augment: Augmentation? = nil,
                dropLast: Bool = false, mean: [Float]? = nil, std: [Float]? = nil) {
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.seed = seed
        self.poolBlocks = poolBlocks
        self.prefetchBlocks = prefetchBlocks
        self.threads = threads
        self.augment = augment
        self.dropLast = dropLast
        self.mean = mean
        self.std = std
    }

    /// Checks ranges; the loader calls this before allocating anything.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw LoaderError.invalidConfig(message) }
        }
        try require(batchSize > 0, "batchSize must be positive, got \(batchSize)")
        try require(poolBlocks > 0, "poolBlocks must be positive, got \(poolBlocks)")
        try require(prefetchBlocks >= 0, "prefetchBlocks must not be negative, got \(prefetchBlocks)")
        try require(threads >= 0 && threads <= 64, "threads must be in 0...64, got \(threads)")
        try require((mean == nil) == (std == nil), "give both mean and std, or neither")
        if let std { try require(std.allSatisfy { $0 > 0 && $0.isFinite }, "std values must be positive") }
        if let mean { try require(mean.allSatisfy { $0.isFinite }, "mean values must be finite") }
        if let augment { try require(augment.cropPadding >= 0, "cropPadding must not be negative") }
    }
}

/// Per-record augmentation: a random crop back to the original size from the image padded with
/// zeros (raw pixel value 0, applied before normalisation), then a horizontal flip with p = 0.5.
/// Every choice is seeded by (seed, epoch, position in epoch), so a resumed run repeats it.
public struct Augmentation: Sendable, Equatable, Codable {
    /// Zero padding on each side before the crop; 0 disables the crop.
    public var cropPadding: Int
    /// Flip left-right with probability 0.5.
    public var horizontalFlip: Bool

    public init(cropPadding: Int = 2, horizontalFlip: Bool = true) {
        self.cropPadding = cropPadding
        self.horizontalFlip = horizontalFlip
    }

    /// The Fashion-MNIST recipe of the reference code: crop 28 with padding 2, then flip.
    public static let fashionMNIST = Augmentation(cropPadding: 2, horizontalFlip: true)
}
