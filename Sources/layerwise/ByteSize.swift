import ArgumentParser
import MemoryLedger

/// A byte count on the command line, read by `ByteCount.parse`: `262144`, `256KiB`, `256K`,
/// `64MiB`, `300MB` (10^6), `1.5GiB`.
struct ByteSize: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        guard let bytes = ByteCount.parse(argument) else { return nil }
        self.bytes = bytes
    }

    var description: String { "\(bytes)" }
    var defaultValueDescription: String { ByteCount.exactBinary(bytes) }
}
