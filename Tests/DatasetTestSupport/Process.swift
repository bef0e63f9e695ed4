import Foundation

/// Runs an executable (tests call tools such as `zstd -t` on the files they write) and returns
/// (status, stdout); stderr is discarded.
public func runProcess(_ executable: String, _ arguments: [String]) throws -> (Int32, [UInt8]) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, Array(data))
}
