import CHiredis
import NIOCore

/// One argument of a Redis command: text, raw bytes or an integer. Binary-safe.
public struct RedisArgument: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    enum Storage: Sendable, Hashable {
        case string(String)
        case bytes(ByteBuffer)
    }

    let storage: Storage

    /// Text, sent as its UTF-8 bytes.
    public static func string(_ value: String) -> RedisArgument { RedisArgument(storage: .string(value)) }
    /// Raw bytes, sent exactly (NUL and non-UTF-8 bytes included).
    public static func bytes(_ value: ByteBuffer) -> RedisArgument { RedisArgument(storage: .bytes(value)) }
    /// Raw bytes, sent exactly.
    public static func bytes(_ value: some Sequence<UInt8>) -> RedisArgument {
        RedisArgument(storage: .bytes(ByteBuffer(bytes: value)))
    }
    /// An integer, sent in decimal.
    public static func integer(_ value: some BinaryInteger) -> RedisArgument { RedisArgument(storage: .string(String(value))) }

    public init(stringLiteral value: String) { self.storage = .string(value) }
    public init(integerLiteral value: Int) { self.storage = .string(String(value)) }
    private init(storage: Storage) { self.storage = storage }
}

/// A Redis command, encoded in RESP by hiredis's `redisFormatCommandArgv` when it is created.
///
/// Encoding up front keeps the work off the event loop for callers on other threads and lets the
/// connection append the bytes to its write buffer without further processing.
public struct RedisCommand: Sendable {
    /// The command's name as given (`GET`, `SET`, …), for logs and errors.
    public let name: String
    /// The RESP encoding of the whole command.
    public let encoded: ByteBuffer

    /// Creates a command from its name and arguments, e.g. `RedisCommand("SET", ["k", .bytes(v), "PX", 500])`.
    public init(_ name: String, _ arguments: [RedisArgument] = []) {
        self.name = name
        self.encoded = Self.format(name: name, arguments)
    }

    /// Runs hiredis's formatter over the name and arguments. Each argument's bytes are passed by
    /// pointer and length, so binary data is safe; the formatted C string is copied and freed.
    /// The pointer and length tables live on the stack.
    private static func format(name: String, _ arguments: [RedisArgument]) -> ByteBuffer {
        let count = arguments.count + 1
        return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                var name = name
                return name.withUTF8 { utf8 in
                    pointers[0] = UnsafeRawPointer(utf8.baseAddress ?? Self.empty.utf8Start).assumingMemoryBound(to: CChar.self)
                    lengths[0] = utf8.count
                    return withArgumentBytes(arguments[...], pointers: pointers, lengths: lengths) {
                        var target: UnsafeMutablePointer<CChar>?
                        let length = redisFormatCommandArgv(&target, Int32(count), pointers.baseAddress, lengths.baseAddress)
                        guard length >= 0, let target else {
                            fatalError("hiredis could not format a command (out of memory)")
                        }
                        defer { redisFreeCommand(target) }
                        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: target, count: Int(length)))
                    }
                }
            }
        }
    }

    /// Pointers to a zero-length argument must still be non-nil for hiredis.
    private static let empty: StaticString = ""

    /// Fills the tables (from index 1) with a pointer and length for every argument, keeping all
    /// of them valid while `body` runs.
    private static func withArgumentBytes<R>(
        _ rest: ArraySlice<RedisArgument>,
        pointers: UnsafeMutableBufferPointer<UnsafePointer<CChar>?>,
        lengths: UnsafeMutableBufferPointer<Int>,
        _ body: () -> R
    ) -> R {
        guard let first = rest.first else { return body() }
        let slot = rest.startIndex + 1  // slices of `arguments` keep its indices; slot 0 is the name
        let remaining = rest.dropFirst()
        switch first.storage {
        case .string(var text):
            return text.withUTF8 { utf8 in
                pointers[slot] = UnsafeRawPointer(utf8.baseAddress ?? empty.utf8Start).assumingMemoryBound(to: CChar.self)
                lengths[slot] = utf8.count
                return withArgumentBytes(remaining, pointers: pointers, lengths: lengths, body)
            }
        case .bytes(let buffer):
            return buffer.withUnsafeReadableBytes { bytes in
                pointers[slot] = (bytes.baseAddress ?? UnsafeRawPointer(empty.utf8Start)).assumingMemoryBound(to: CChar.self)
                lengths[slot] = bytes.count
                return withArgumentBytes(remaining, pointers: pointers, lengths: lengths, body)
            }
        }
    }
}
