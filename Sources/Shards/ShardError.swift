/// Everything that can go wrong reading, writing or converting shards. Each case carries the
/// context needed to act on it (file, shard, block, byte offset) and its `description` reads as
/// a sentence, so the CLI prints it as is.
public enum ShardError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: files
    /// A system call on a file failed (`operation` is what we tried, `message` is strerror).
    case io(file: String, operation: String, message: String)

    // MARK: shard structure
    /// The bytes at `offset` are not what a shard has there.
    case badMagic(file: String, offset: Int, expected: UInt32, found: UInt32)
    /// The shard was written by a newer format version than this reader understands.
    case unsupportedVersion(file: String, version: Int, supported: Int)
    /// The file ends before a structure it claims to hold.
    case truncated(file: String, offset: Int, needed: Int, size: Int)
    /// The file does not end in a shard trailer (no trailer magic at `offset`, its last 4 bytes):
    /// it was cut short, its writer never finished, or the magic is corrupt.
    case missingTrailer(file: String, offset: Int, size: Int)
    /// The header frame's CRC32C does not match its bytes.
    case headerChecksumMismatch(file: String, offset: Int, stored: UInt32, computed: UInt32)
    /// The index frame's CRC32C does not match its bytes.
    case indexChecksumMismatch(file: String, offset: Int, stored: UInt32, computed: UInt32)
    /// A size or count in the header, index or trailer disagrees with another one (a lying size).
    case inconsistent(file: String, block: Int?, offset: Int, problem: String)

    // MARK: blocks
    /// The CRC32C of a block's compressed frame does not match the index.
    case blockChecksumMismatch(file: String, block: Int, offset: Int, stored: UInt32, computed: UInt32)
    /// zstd's own content checksum failed after decompression.
    case contentChecksumMismatch(file: String, block: Int, offset: Int)
    /// zstd could not decode the frame.
    case corruptFrame(file: String, block: Int, offset: Int, reason: String)
    /// A block decoded to another size than the index says.
    case blockSizeMismatch(file: String, block: Int, offset: Int, expected: Int, actual: Int)
    /// The caller's buffer cannot hold the block.
    case destinationTooSmall(block: Int, needed: Int, available: Int)
    /// A block number outside the source.
    case blockOutOfRange(block: Int, count: Int)

    // MARK: datasets
    /// A folder without `manifest.json`: not a dataset, or a conversion that never finished.
    case manifestMissing(directory: String)
    /// `manifest.json` does not parse or breaks a rule of the format.
    case manifestInvalid(file: String, problem: String)
    /// The manifest and a shard disagree about a property.
    case manifestMismatch(file: String, property: String, manifest: String, shard: String)
    /// A shard's whole-file hash differs from the manifest's.
    case fileHashMismatch(file: String, expected: String, actual: String)
    /// The dataset has no split with this name.
    case splitNotFound(split: String, available: [String])
    /// The split already exists in the target dataset.
    case splitExists(split: String, directory: String)
    /// A new split's schema differs from the dataset's.
    case schemaMismatch(directory: String, existing: String, new: String)

    // MARK: conversion
    /// An input file is not what its converter expects (bad magic, bad header, wrong dtype ...).
    case invalidInput(file: String, problem: String)
    /// An input file ends early.
    case truncatedInput(file: String, expectedBytes: Int, actualBytes: Int)
    /// An input file goes on after the header and records it announces (uncompressed bytes).
    case trailingBytes(file: String, count: Int, payloadBytes: Int)
    /// A text input has a fault on a given line (1-based).
    case invalidLine(file: String, line: Int, problem: String)
    /// Two inputs that must agree on a record count do not.
    case countMismatch(file: String, count: Int, otherFile: String, otherCount: Int)
    /// A label outside 0..<classCount (record index in source order).
    case labelOutOfRange(file: String, record: Int, label: Int, classCount: Int)
    /// An option value that cannot work.
    case invalidOption(name: String, problem: String)
    /// zstd refused to compress.
    case compressionFailed(file: String, block: Int, reason: String)

    public var description: String {
        switch self {
        case let .io(file, operation, message):
            return "Could not \(operation) \(file): \(message)."
        case let .badMagic(file, offset, expected, found):
            return "\(file) is not a valid shard: expected magic \(hex(expected)) at byte offset \(offset) but found \(hex(found))."
        case let .unsupportedVersion(file, version, supported):
            return "\(file) has format version \(version), but this reader supports version \(supported) only."
        case let .truncated(file, offset, needed, size):
            return "\(file) is truncated: a structure at byte offset \(offset) needs \(needed) bytes but the file has \(size) bytes."
        case let .missingTrailer(file, offset, size):
            return "\(file) does not end in a shard trailer: the trailer magic is not at byte offset \(offset) of its \(size) bytes; "
                + "the file is truncated, its writer did not finish, or its trailer is corrupt."
        case let .headerChecksumMismatch(file, offset, stored, computed):
            return "The header of \(file) at byte offset \(offset) is corrupt: its CRC32C is \(hex(computed)) but \(hex(stored)) was stored."
        case let .indexChecksumMismatch(file, offset, stored, computed):
            return "The block index of \(file) at byte offset \(offset) is corrupt: its CRC32C is \(hex(computed)) but \(hex(stored)) was stored."
        case let .inconsistent(file, block, offset, problem):
            if let block {
                return "Block \(block) of \(file) at byte offset \(offset) is inconsistent: \(problem)."
            }
            return "\(file) is inconsistent at byte offset \(offset): \(problem)."
        case let .blockChecksumMismatch(file, block, offset, stored, computed):
            return "Block \(block) of \(file) at byte offset \(offset) is corrupt: its frame CRC32C is \(hex(computed)) but the index says \(hex(stored))."
        case let .contentChecksumMismatch(file, block, offset):
            return "Block \(block) of \(file) at byte offset \(offset) is corrupt: the zstd content checksum does not match the decompressed data."
        case let .corruptFrame(file, block, offset, reason):
            return "Block \(block) of \(file) at byte offset \(offset) could not be decompressed: \(reason)."
        case let .blockSizeMismatch(file, block, offset, expected, actual):
            return "Block \(block) of \(file) at byte offset \(offset) decoded to \(actual) bytes but the index says \(expected)."
        case let .destinationTooSmall(block, needed, available):
            return "Block \(block) needs a buffer of \(needed) bytes but the buffer has \(available)."
        case let .blockOutOfRange(block, count):
            return "Block \(block) does not exist: the source has \(count) blocks."
        case let .manifestMissing(directory):
            return "\(directory) has no manifest.json: it is not a dataset, or its conversion did not finish."
        case let .manifestInvalid(file, problem):
            return "\(file) is not a valid manifest: \(problem)."
        case let .manifestMismatch(file, property, manifest, shard):
            return "\(file) disagrees with the manifest: its \(property) is \(shard) but the manifest says \(manifest)."
        case let .fileHashMismatch(file, expected, actual):
            return "\(file) has changed since it was written: its SHA-256 is \(actual) but the manifest says \(expected)."
        case let .splitNotFound(split, available):
            return "The dataset has no split named \"\(split)\"; it has \(available.isEmpty ? "none" : available.joined(separator: ", "))."
        case let .splitExists(split, directory):
            return "\(directory) already has a split named \"\(split)\"; pass replace (--replace) to overwrite it."
        case let .schemaMismatch(directory, existing, new):
            return "The new split's schema \(new) differs from the schema \(existing) of the dataset in \(directory)."
        case let .invalidInput(file, problem):
            return "\(file): \(problem)."
        case let .truncatedInput(file, expected, actual):
            return "\(file) is truncated: expected \(expected) bytes but found \(actual)."
        case let .trailingBytes(file, count, payload):
            return "\(file) has \(count) byte\(count == 1 ? "" : "s") after its last record (header and records end at byte \(payload)): the wrong file, or a count in its header that is too small; pass --allow-trailing to ignore them."
        case let .invalidLine(file, line, problem):
            return "\(file), line \(line): \(problem)."
        case let .countMismatch(file, count, otherFile, otherCount):
            return "\(file) holds \(count) records but \(otherFile) holds \(otherCount); they must agree."
        case let .labelOutOfRange(file, record, label, classCount) where classCount <= 0:
            return "\(file): record \(record) has label \(label); labels must not be negative."
        case let .labelOutOfRange(file, record, label, classCount):
            return "\(file): record \(record) has label \(label), outside 0..<\(classCount)."
        case let .invalidOption(name, problem):
            return "Option \(name): \(problem)."
        case let .compressionFailed(file, block, reason):
            return "Could not compress block \(block) of \(file): \(reason)."
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
