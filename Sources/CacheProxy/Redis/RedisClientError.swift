/// A failure of the client or the transport, as opposed to an error reply from the server
/// (``RedisServerError``).
///
/// Compare with the static members (`error == .timeout`); equality looks only at the kind, so
/// errors with different details still match their kind.
public struct RedisClientError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case timeout
        case connectionClosed
        case connectFailed
        case authenticationFailed
        case handshakeFailed
        case protocolError
        case clientShutdown
        case connectionStalled
    }

    private let code: Code
    /// What happened, in words; includes the server address or the server's reply where known.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// No reply within the command timeout. The command may still have run on the server.
    public static let timeout = RedisClientError(.timeout, "no reply within the command timeout")
    /// The connection closed while the command was waiting for its reply.
    public static let connectionClosed = RedisClientError(.connectionClosed, "the connection to Redis closed before the reply arrived")
    /// Could not connect to the server (refused, unreachable, connect timeout); the client retries with backoff.
    public static let connectFailed = RedisClientError(.connectFailed, "could not connect to Redis")
    /// The server rejected `AUTH` (wrong user name or password).
    public static let authenticationFailed = RedisClientError(.authenticationFailed, "Redis rejected the credentials")
    /// A connection set-up command other than `AUTH` failed (e.g. `SELECT` of a database that does not exist).
    public static let handshakeFailed = RedisClientError(.handshakeFailed, "connection set-up failed")
    /// The server sent bytes that are not valid RESP, or a reply nobody asked for.
    public static let protocolError = RedisClientError(.protocolError, "protocol error")
    /// The client was shut down.
    public static let clientShutdown = RedisClientError(.clientShutdown, "the Redis client is shut down")
    /// The server stopped answering for longer than the stall timeout; the connection was closed.
    public static let connectionStalled = RedisClientError(.connectionStalled, "Redis stopped answering; connection closed")

    /// The same kind of error with a more specific detail.
    func withDetail(_ detail: String) -> RedisClientError {
        RedisClientError(code, detail)
    }

    public var description: String { "Redis client error: \(detail)" }
}

extension RedisClientError: Hashable {
    public static func == (lhs: RedisClientError, rhs: RedisClientError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
    }
}
