/// The element types a Layerwise checkpoint stores, spelled as the safetensors header spells them.
public enum SafeTensorsDType: String, CaseIterable, Sendable, Equatable {
    case f32 = "F32"
    case f64 = "F64"
    case i32 = "I32"
    case i64 = "I64"
    case u8 = "U8"
    /// bfloat16: the top 16 bits of an fp32 (bf16 optimizer moments).
    case bf16 = "BF16"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        case .u8: return 1
        case .bf16: return 2
        }
    }
}

/// A Swift element type with a safetensors dtype of the same size and bit layout, so arrays of
/// it can be written and read by copying bytes (all supported platforms are little-endian).
public protocol SafeTensorsElement {
    static var safeTensorsDType: SafeTensorsDType { get }
}

extension Float: SafeTensorsElement { public static var safeTensorsDType: SafeTensorsDType { .f32 } }
extension Double: SafeTensorsElement { public static var safeTensorsDType: SafeTensorsDType { .f64 } }
extension Int32: SafeTensorsElement { public static var safeTensorsDType: SafeTensorsDType { .i32 } }
extension Int64: SafeTensorsElement { public static var safeTensorsDType: SafeTensorsDType { .i64 } }
extension UInt8: SafeTensorsElement { public static var safeTensorsDType: SafeTensorsDType { .u8 } }

#if _endian(big)
#error("SafeTensors copies raw bytes and assumes a little-endian host")
#endif
