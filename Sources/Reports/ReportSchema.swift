import Foundation
/// The version tag written into every `memory.json`.
///
/// The major number after the slash changes when a field is removed or changes meaning; new
/// optional fields keep the version. Readers reject a document whose family or major differs.
public enum ReportSchema {
    /// The schema this code writes and reads.
    public static let version = "layerwise.memory/1"

    /// True when `tag` names a document this code can read.
    public static func isReadable(_ tag: String) -> Bool {
        tag == version
    }
}

/// A report that could not be read or written; the description reads as a sentence.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case unsupportedSchema(found: String)
    case writeFailed(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .unsupportedSchema(let found):
            return "memory report schema \"\(found)\" is not supported (this build reads \"\(ReportSchema.version)\")"
        case .writeFailed(let path, let code):
            return "could not write \(path): \(String(cString: strerror(code)))"
        }
    }
}
