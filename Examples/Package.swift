// swift-tools-version:6.0
// An application that uses Layerwise as a library, the way a project of yours would. Here the
// dependency is the checkout this folder sits in; elsewhere write
//     .package(url: "https://.../Layerwise.git", from: "0.1.0")
// (tools/check-dependable.sh builds this example against a tagged copy exactly that way).
import PackageDescription

let package = Package(
    name: "LayerwiseExamples",
    dependencies: [
        .package(name: "Layerwise", path: ".."),
    ],
    targets: [
        .executableTarget(name: "TrainMLP", dependencies: [.product(name: "Layerwise", package: "Layerwise")]),
    ],
    swiftLanguageModes: [.v5]
)
