import Randomness

/// The independent random streams of the loader, each derived from (seed, epoch, stream tag,
/// ...) so that no stream's consumption shifts another: the plan does not depend on how many
/// records were augmented, and a resumed run can rebuild any stream from its coordinates.
enum LoaderSeeds {
    private static let blockOrderTag: UInt64 = 1
    private static let slotDrawTag: UInt64 = 2
    private static let recordOrderTag: UInt64 = 3
    private static let augmentationTag: UInt64 = 4

    static func blockOrder(seed: UInt64, epoch: Int) -> UInt64 {
        Xoshiro256.derive(seed, UInt64(epoch), blockOrderTag)
    }

    static func slotDraws(seed: UInt64, epoch: Int) -> UInt64 {
        Xoshiro256.derive(seed, UInt64(epoch), slotDrawTag)
    }

    static func recordOrder(seed: UInt64, epoch: Int, block: Int) -> UInt64 {
        Xoshiro256.derive(seed, UInt64(epoch), recordOrderTag, UInt64(block))
    }

    static func augmentation(seed: UInt64, epoch: Int, position: Int) -> UInt64 {
        Xoshiro256.derive(seed, UInt64(epoch), augmentationTag, UInt64(position))
    }
}
