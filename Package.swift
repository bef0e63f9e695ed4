// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Layerwise",
    products: [
        .executable(name: "layerwise", targets: ["layerwise"]),
        .library(name: "Layerwise", targets: ["MemoryLedger", "Randomness", "Tensors", "Shards", "Layers", "Training", "Reports"]),
        // Pipelined training over MPI ranks (`layerwise train --stages S` under mpirun). Without
        // the MPI trait it builds too, and says so when a staged run is asked for.
        .library(name: "LayerwiseStages", targets: ["MessagePassing"]),
    ],
    traits: [
        .trait(name: "MPI", description: "Link Open MPI (libopenmpi-dev) for `layerwise train --stages S` under mpirun."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target Training`: the DocC catalog in
        // Sources/Training/Training.docc. A plugin only; nothing of it is linked into the library.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Our small C API over oneDNN 2.6 (Debian's libdnnl-dev; no pkg-config file): the only
        // code that knows oneDNN's C API. libdnnl pulls in its OpenMP runtime (libgomp) itself.
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dnnl")]),
        // Open MPI's C API (libopenmpi-dev), linked only with `--traits MPI`.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // Elementwise hot loops in C, one implementation per instruction set chosen at run time
        // (CPUID / NEON), so that plain `-c release` builds run AVX2 or AVX-512 where the CPU has it.
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("m")]),
        .target(name: "MemoryLedger"),
        .target(name: "Randomness"),
        .target(name: "FileSystem"),
        .target(name: "Tensors", dependencies: ["MemoryLedger", "Randomness", "CBLAS", "CDNNL", "CKernels"]),
        .target(name: "Shards", dependencies: ["MemoryLedger", "Randomness", "CZstd", "CZlib"]),
        // IDX, CIFAR, NPY and CSV inputs and the bounded-memory pre-shuffle, written through Shards.
        .target(name: "Converters", dependencies: ["Shards", "Randomness"]),
        .target(name: "Layers", dependencies: ["Tensors", "MemoryLedger", "Randomness"]),
        .target(name: "Reports", dependencies: ["MemoryLedger", "FileSystem"]),
        .target(name: "Training", dependencies: ["Layers", "Tensors", "Shards", "Reports", "MemoryLedger", "FileSystem", "Randomness"]),
        // The MPI link between pipeline stages (`StageLink`); without the MPI trait a stub that
        // refuses, so the default build needs no MPI headers.
        .target(name: "MessagePassing", dependencies: ["Training", "Tensors", "MemoryLedger",
                                                       .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        // `layerwise bench ...` and `shards bench`: measurements, not part of the library product.
        .target(name: "Benchmarks", dependencies: ["Training", "Layers", "Tensors", "Shards", "MemoryLedger", "Randomness"]),
        .executableTarget(
            name: "layerwise",
            dependencies: ["Training", "MessagePassing", "Benchmarks", "Converters", "Layers", "Shards", "Reports", "Tensors", "MemoryLedger",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            ),
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
        .testTarget(name: "ShardsTests", dependencies: ["Shards", "Converters", "MemoryLedger", "DatasetTestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Tensors", "MemoryLedger", "Randomness", "NumericTestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Layers", "Tensors", "Shards", "Converters", "MemoryLedger", "Reports",
                                                          "Randomness", "DatasetTestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "MemoryLedger"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Converters", "Shards", "Tensors", "MemoryLedger"]),
        // Runs the built `layerwise` executable as a user would (build it first:
        // `swift build --build-tests`); Foundation only, no module of ours.
        .testTarget(name: "CLITests", dependencies: []),
    ],
    swiftLanguageModes: [.v5]
)
