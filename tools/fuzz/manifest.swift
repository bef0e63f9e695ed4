// The dataset manifest (tools/fuzz.sh manifest): manifest.json as `DatasetManifest.load` and
// `shards info` read it. Half the inputs are taken as they are; in the other half a manifest
// that decodes gets its fingerprints recomputed first, so mutations reach the checks behind them.
import Foundation
@testable import Shards

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: count)
    let folder = FuzzInput.folder
    FuzzInput.write(bytes, to: DatasetManifest.fileName)
    check(folder)
    if var manifest = try? JSONDecoder().decode(DatasetManifest.self, from: Data(bytes)) {
        for name in manifest.splits.keys {
            manifest.splits[name]!.fingerprint = DatasetManifest.fingerprint(schema: manifest.schema, shards: manifest.splits[name]!.shards)
        }
        manifest.fingerprint = DatasetManifest.fingerprint(splits: manifest.splits)
        manifest.encoded().withUnsafeBytes { _ = FuzzInput.write($0, to: DatasetManifest.fileName) }
        check(folder)
    }
    return 0
}

private func check(_ folder: String) {
    do {
        let dataset = try ShardDataset(directory: folder)
        for name in dataset.splitNames {
            _ = dataset.manifest.splits[name]?.statistics?.normalization
            _ = try? dataset.split(name)   // the shard files are not there: must fail cleanly
        }
        _ = try? DatasetInfo(directory: folder)
    } catch is ShardError {
    } catch {
        fatalError("the manifest reader threw something other than ShardError: \(error)")
    }
}
