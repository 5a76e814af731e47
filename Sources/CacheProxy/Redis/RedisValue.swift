import NIOCore

/// A reply from Redis (RESP2).
///
/// A nil bulk string or nil array is ``null``: a value, not an error. An error reply at the top
/// level is thrown as ``RedisServerError`` by the client; inside an array (the replies of `EXEC`)
/// it stays a value, ``error(_:)``.
public enum RedisValue: Sendable, Hashable {
    /// A status reply such as `+OK`.
    case simpleString(String)
    /// A bulk string: any bytes, binary-safe.
    case bulkString(ByteBuffer)
    /// An integer reply.
    case integer(Int64)
    /// An array reply.
    case array([RedisValue])
    /// A nil bulk string or nil array.
    case null
    /// An error reply nested in an array.
    case error(RedisServerError)
}

extension RedisValue {
    /// The bytes of a bulk string, or nil for any other reply.
    public var bytes: ByteBuffer? {
        if case .bulkString(let buffer) = self { return buffer }
        return nil
    }

    /// The text of a status or bulk-string reply (UTF-8, lossy), or nil for any other reply.
    public var string: String? {
        switch self {
        case .simpleString(let text): return text
        case .bulkString(let buffer): return String(buffer: buffer)
        default: return nil
        }
    }

    /// The value of an integer reply, or nil for any other reply.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The elements of an array reply, or nil for any other reply.
    public var array: [RedisValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// An error reply from the server (`-ERR …`, `-WRONGTYPE …`, `-NOAUTH …`).
///
/// This is the server refusing a command; the connection is still good. Transport failures and
/// timeouts are ``RedisClientError`` instead.
public struct RedisServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The whole error line without the leading `-`, e.g. `WRONGTYPE Operation against a key …`.
    public let message: String

    /// Creates an error from the reply text (without the leading `-`).
    public init(message: String) {
        self.message = message
    }

    /// The error's first word, which Redis uses as its kind: `ERR`, `WRONGTYPE`, `NOAUTH`, …
    public var prefix: Substring {
        message.prefix(while: { $0 != " " })
    }

    public var description: String { "Redis error reply: \(message)" }
}
