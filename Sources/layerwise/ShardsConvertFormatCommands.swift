import ArgumentParser
import Converters
import Foundation
import Shards

extension CIFARInput.Variant: ExpressibleByArgument {}

struct ConvertCIFARCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cifar", abstract: "Convert CIFAR-10 or CIFAR-100 binary files (images stored as HWC uint8 [32,32,3]).")

    @Argument(help: "CIFAR binary files, e.g. data_batch_1.bin ... data_batch_5.bin, or train.bin.")
    var files: [String]

    @Option(help: "cifar10 (1 label byte) or cifar100 (2 label bytes: coarse, fine).")
    var variant: CIFARInput.Variant = .cifar10

    @Flag(help: "CIFAR-100: store the 20 coarse labels instead of the 100 fine ones.")
    var coarse = false

    @OptionGroup var options: ConvertOptions

    func run() throws { try options.run(try CIFARInput(files: files, variant: variant, coarseLabels: coarse)) }
}

struct ConvertNPYCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "npy", abstract: "Convert NumPy .npy images (uint8, float32, float64) and integer labels.")

    @Option(help: "Images .npy: [N,H,W], [N,H,W,C] or [N,D].")
    var images: String

    @Option(help: "Labels .npy: [N] or [N,1], any integer dtype.")
    var labels: String

    @Option(help: "Per-record shape to store, e.g. 28,28,1 for [N,784] features.")
    var shape: ShapeArgument?

    @OptionGroup var options: ConvertOptions

    func run() throws { try options.run(try NPYInput(images: images, labels: labels, shape: shape?.dims)) }
}

struct ConvertCSVCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csv", abstract: "Convert a CSV (or .csv.gz) of an integer label column and numeric features.")

    @Argument(help: "The CSV file.")
    var file: String

    @Option(help: "Label column: a 0-based index or a header name.")
    var labelColumn: String = "0"

    @Flag(inversion: .prefixedNo, help: "Whether the first row is a header (default: detected).")
    var header: Bool?

    @Option(help: "Feature type: float32 or uint8.")
    var dtype: String = "float32"

    @Option(help: "Per-record shape to store, e.g. 28,28,1 (default 1,1,D).")
    var shape: ShapeArgument?

    @Option(help: "Cell delimiter.")
    var delimiter: String = ","

    @OptionGroup var options: ConvertOptions

    func validate() throws {
        guard dtype == "float32" || dtype == "uint8" else { throw ValidationError("--dtype must be float32 or uint8.") }
        guard delimiter.count == 1 else { throw ValidationError("--delimiter must be one character.") }
    }

    func run() throws {
        let column: CSVInput.LabelColumn = Int(labelColumn).map { .index($0) } ?? .name(labelColumn)
        let input = try CSVInput(path: file, labelColumn: column, header: header, featureType: FieldType(rawValue: dtype)!,
                                 shape: shape?.dims, delimiter: delimiter.first!)
        try options.run(input)
    }
}

/// `28,28,1` on the command line.
struct ShapeArgument: ExpressibleByArgument {
    var dims: [Int]
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        dims = parts.map { $0! }
    }
}
