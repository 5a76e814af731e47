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
        let all = [RedisArgument.string(name)] + arguments
        self.encoded = Self.format(all)
    }

    /// Runs hiredis's formatter over the arguments. Each argument's bytes are passed by pointer
    /// and length, so binary data is safe; the formatted C string is copied and freed.
    private static func format(_ arguments: [RedisArgument]) -> ByteBuffer {
        var pointers = [UnsafePointer<CChar>?](repeating: nil, count: arguments.count)
        var lengths = [Int](repeating: 0, count: arguments.count)
        return withArgumentBytes(arguments[...], pointers: &pointers, lengths: &lengths) { pointers, lengths in
            var target: UnsafeMutablePointer<CChar>?
            let length = redisFormatCommandArgv(&target, Int32(pointers.count), &pointers, &lengths)
            guard length >= 0, let target else {
                fatalError("hiredis could not format a command (out of memory)")
            }
            defer { redisFreeCommand(target) }
            return ByteBuffer(bytes: UnsafeRawBufferPointer(start: target, count: Int(length)))
        }
    }

    /// Calls `body` with a pointer and length for every argument, keeping all of them valid at once.
    private static func withArgumentBytes<R>(
        _ rest: ArraySlice<RedisArgument>,
        pointers: inout [UnsafePointer<CChar>?],
        lengths: inout [Int],
        _ body: (inout [UnsafePointer<CChar>?], inout [Int]) -> R
    ) -> R {
        guard let first = rest.first else { return body(&pointers, &lengths) }
        let index = rest.startIndex
        let remaining = rest.dropFirst()
        // Pointers to a zero-length argument must still be non-nil for hiredis.
        let empty: StaticString = ""
        switch first.storage {
        case .string(var text):
            return text.withUTF8 { utf8 in
                pointers[index] = UnsafeRawPointer(utf8.baseAddress ?? empty.utf8Start).assumingMemoryBound(to: CChar.self)
                lengths[index] = utf8.count
                return withArgumentBytes(remaining, pointers: &pointers, lengths: &lengths, body)
            }
        case .bytes(let buffer):
            return buffer.withUnsafeReadableBytes { bytes in
                pointers[index] = (bytes.baseAddress ?? UnsafeRawPointer(empty.utf8Start)).assumingMemoryBound(to: CChar.self)
                lengths[index] = bytes.count
                return withArgumentBytes(remaining, pointers: &pointers, lengths: &lengths, body)
            }
        }
    }
}
