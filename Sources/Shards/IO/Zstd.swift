import CZstd

/// The only file that calls libzstd. A compressor and a decompressor each own one reused zstd
/// context (creating a context costs far more than compressing a 256 KiB block); neither is
/// thread-safe, so each thread makes its own.
package enum Zstd {
    /// Failure of a zstd call, with zstd's own message and whether it was the content checksum.
    package struct Failure: Error {
        package var message: String
        var isChecksum: Bool
    }

    static func isError(_ code: Int) -> Bool { ZSTD_isError(code) != 0 }

    static func failure(_ code: Int) -> Failure {
        Failure(message: String(cString: ZSTD_getErrorName(code)),
                isChecksum: ZSTD_getErrorCode(code) == ZSTD_error_checksum_wrong)
    }

    /// The most bytes compressing `size` bytes can produce.
    package static func compressBound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    /// The decompressed size a frame header announces; nil if absent or unreadable.
    static func frameContentSize(_ frame: UnsafeRawBufferPointer) -> Int? {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        // ZSTD_CONTENTSIZE_UNKNOWN is UInt64.max, ZSTD_CONTENTSIZE_ERROR is UInt64.max - 1.
        guard size < UInt64.max - 1, size <= UInt64(Int.max) else { return nil }
        return Int(size)
    }

    package static var versionString: String { String(cString: ZSTD_versionString()) }

    /// One reused compression context with a fixed level; every frame carries its content size
    /// and a content checksum so `zstd -t` and the reader can check it on its own.
    package final class Compressor {
        private let context: OpaquePointer
        let level: Int32

        package init(level: Int) throws {
            guard let c = ZSTD_createCCtx() else { throw Failure(message: "out of memory creating a zstd context", isChecksum: false) }
            context = c
            self.level = Int32(level)
            for (param, value) in [(ZSTD_c_compressionLevel, Int32(level)), (ZSTD_c_checksumFlag, 1), (ZSTD_c_contentSizeFlag, 1)] {
                let rc = ZSTD_CCtx_setParameter(context, param, value)
                if Zstd.isError(rc) { ZSTD_freeCCtx(context); throw Zstd.failure(rc) }
            }
        }

        deinit { ZSTD_freeCCtx(context) }

        /// Compresses `source` into one frame in `destination` (at least `compressBound` bytes)
        /// and returns the frame's size. Frames are independent: the output of one call does not
        /// depend on earlier calls, which is what makes parallel compression deterministic.
        package func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
            let rc = ZSTD_compress2(context, destination.baseAddress, destination.count, source.baseAddress, source.count)
            if Zstd.isError(rc) { throw Zstd.failure(rc) }
            return rc
        }
    }

    /// One reused decompression context. zstd checks the frame's content checksum itself.
    final class Decompressor {
        private let context: OpaquePointer

        init() throws {
            guard let d = ZSTD_createDCtx() else { throw Failure(message: "out of memory creating a zstd context", isChecksum: false) }
            context = d
        }

        deinit { ZSTD_freeDCtx(context) }

        /// Decompresses exactly one frame and returns the bytes written.
        func decompress(_ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
            let rc = ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, frame.baseAddress, frame.count)
            if Zstd.isError(rc) { throw Zstd.failure(rc) }
            return rc
        }
    }
}
