// swift-tools-version:6.0
import PackageDescription

// Release builds drop overflow and bounds checks in the numeric modules (their hot loops run on
// unsafe buffers whose extents are validated once, outside the loop) and target Haswell-level
// x86-64 (AVX2 + FMA): plain release builds target SSE2 only, which halves the elementwise
// loops' throughput (Adam over 6M parameters per step; `layerwise bench train`).
// HASWELL_INTRINSICS lets a loop call an AVX intrinsic where Swift's SIMD types fall short (the
// vector square root in Adam); debug builds keep the portable form.
let fast: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release)),
                            .define("HASWELL_INTRINSICS", .when(configuration: .release))]

let package = Package(
    name: "Layerwise",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "layerwise", targets: ["layerwise"]),
        .library(name: "Layerwise", targets: ["MemoryLedger", "Randomness", "Tensors", "Shards", "Layers", "Training", "Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Our small C API over oneDNN 2.6 (Debian's libdnnl-dev; no pkg-config file): the only
        // code that knows oneDNN's C API. libdnnl pulls in its OpenMP runtime (libgomp) itself.
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dnnl")]),
        .target(name: "MemoryLedger", swiftSettings: fast),
        .target(name: "Randomness", swiftSettings: fast),
        .target(name: "FileSystem"),
        .target(name: "Tensors", dependencies: ["MemoryLedger", "Randomness", "CBLAS", "CDNNL"], swiftSettings: fast),
        .target(name: "Shards", dependencies: ["MemoryLedger", "Randomness", "CZstd", "CZlib"], swiftSettings: fast),
        .target(name: "Layers", dependencies: ["Tensors", "MemoryLedger", "Randomness"], swiftSettings: fast),
        .target(name: "Reports", dependencies: ["MemoryLedger", "FileSystem"], swiftSettings: fast),
        .target(name: "Training", dependencies: ["Layers", "Tensors", "Shards", "Reports", "MemoryLedger", "FileSystem", "Randomness"], swiftSettings: fast),
        .executableTarget(
            name: "layerwise",
            dependencies: ["Training", "Layers", "Shards", "Reports", "Tensors", "MemoryLedger",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fast),
        .testTarget(name: "MemoryLedgerTests", dependencies: ["MemoryLedger", "Randomness"]),
        // Float64 reference implementations and the finite-difference gradient checker shared by
        // the numeric test targets; only tests depend on it.
        .target(name: "NumericTestSupport", dependencies: ["Tensors", "Randomness", "MemoryLedger"],
                path: "Tests/NumericTestSupport"),
        // Datasets that tests read from outside the repository, and the rule for when a missing
        // one fails a test instead of skipping it; only tests depend on it.
        .target(name: "DatasetTestSupport", path: "Tests/DatasetTestSupport"),
        .testTarget(name: "DatasetTestSupportTests", dependencies: ["DatasetTestSupport"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "MemoryLedger", "Randomness", "NumericTestSupport"]),
        .testTarget(name: "ShardsTests", dependencies: ["Shards", "MemoryLedger", "DatasetTestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Tensors", "MemoryLedger", "Randomness", "NumericTestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Layers", "Tensors", "Shards", "MemoryLedger", "Reports", "Randomness",
                                                          "DatasetTestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "MemoryLedger"]),
        // Runs the built `layerwise` executable as a user would (build it first:
        // `swift build --build-tests`); Foundation only, no module of ours.
        .testTarget(name: "CLITests", dependencies: []),
    ],
    swiftLanguageModes: [.v5]
)
