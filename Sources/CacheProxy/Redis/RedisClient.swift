import Logging
import NIOCore
import NIOPosix

/// A pipelined Redis client: one connection per event loop of the group it is given.
///
/// A caller on one of those event loops (a request handler, say) talks to the connection of its
/// own loop, so a command costs no thread hop; callers from async code or other threads are
/// spread over the loops. Each connection reconnects by itself with backoff; while it cannot,
/// commands fail fast with the last connection error instead of waiting.
///
/// ```swift
/// let redis = RedisClient(configuration: .init(url: try RedisURL(parsing: "redis://127.0.0.1:6379/0")),
///                         eventLoopGroup: group)
/// try await redis.set("greeting", to: ByteBuffer(string: "hello"), expiration: .seconds(30))
/// let value = try await redis.get("greeting")
/// ```
public final class RedisClient: Sendable {
    /// How to reach Redis and how long to wait for it.
    public struct Configuration: Sendable {
        /// The server, credentials and database.
        public var url: RedisURL
        /// How long a connect plus hand-shake may take. Default 1 s.
        public var connectTimeout: TimeAmount
        /// How long a command may wait for its reply, unless the call gives its own. Default 1 s.
        public var commandTimeout: TimeAmount
        /// How long past its deadline the oldest unanswered command may stay before the
        /// connection is considered dead and replaced. Default 5 s.
        public var stallTimeout: TimeAmount
        /// Delays between reconnect attempts. Default ``RedisBackoff/init(initial:maximum:jitter:)``.
        public var backoff: RedisBackoff
        /// When writes are flushed. Default `.batched` (once per event-loop pass).
        var flushStrategy: RedisConnectionHandler.FlushStrategy

        /// Creates a configuration; see the properties for the defaults.
        public init(
            url: RedisURL,
            connectTimeout: TimeAmount = .seconds(1),
            commandTimeout: TimeAmount = .seconds(1),
            stallTimeout: TimeAmount = .seconds(5),
            backoff: RedisBackoff = RedisBackoff()
        ) {
            self.url = url
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.stallTimeout = stallTimeout
            self.backoff = backoff
            self.flushStrategy = .batched
        }

        /// Flushes after every command instead of once per event-loop pass. Only for benchmarks.
        public var flushesEveryCommand: Bool {
            get { flushStrategy == .perCommand }
            set { flushStrategy = newValue ? .perCommand : .batched }
        }
    }

    /// The configuration the client was created with.
    public let configuration: Configuration
    private let eventLoopGroup: EventLoopGroup
    private let connections: [ObjectIdentifier: RedisConnection]

    /// Creates a client with one connection per loop of `eventLoopGroup`. Connections open at
    /// the first command, or at once after ``connect()``.
    ///
    /// - Parameter logger: where connection trouble is reported. Default: a logger that drops everything.
    public init(
        configuration: Configuration,
        eventLoopGroup: EventLoopGroup,
        logger: Logger = Logger(label: "cache-proxy.redis", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        var connections: [ObjectIdentifier: RedisConnection] = [:]
        for eventLoop in eventLoopGroup.makeIterator() {
            connections[ObjectIdentifier(eventLoop)] = RedisConnection(configuration: configuration, eventLoop: eventLoop, logger: logger)
        }
        self.connections = connections
    }

    /// Starts connecting every connection now rather than at its first command.
    public func connect() {
        for connection in connections.values {
            connection.start()
        }
    }

    /// Sends any command using the connection of `eventLoop` (no thread hop when called on it).
    /// The future completes on that loop with the reply; it fails with ``RedisServerError`` for an
    /// error reply and ``RedisClientError`` for a transport failure or timeout.
    ///
    /// - Parameters:
    ///   - eventLoop: the caller's loop. A loop outside the client's group gets the next loop's connection.
    ///   - timeout: how long to wait for the reply. Default: the configured `commandTimeout`.
    public func send(_ command: RedisCommand, on eventLoop: EventLoop, timeout: TimeAmount? = nil) -> EventLoopFuture<RedisValue> {
        send(command, preferring: eventLoop, timeout: timeout)
    }

    /// Sends any command from async code; see ``send(_:on:timeout:)``.
    public func send(_ command: RedisCommand, timeout: TimeAmount? = nil) async throws -> RedisValue {
        try await send(command, preferring: nil, timeout: timeout).get()
    }

    func send(_ command: RedisCommand, preferring eventLoop: EventLoop?, timeout: TimeAmount?) -> EventLoopFuture<RedisValue> {
        connection(for: eventLoop).send(command, timeout: timeout ?? configuration.commandTimeout)
    }

    /// Closes every connection. Pending and later commands fail with ``RedisClientError/clientShutdown``.
    public func shutdown() async {
        for connection in connections.values {
            try? await connection.shutdown().get()
        }
    }

    private func connection(for eventLoop: EventLoop?) -> RedisConnection {
        if let eventLoop, let connection = connections[ObjectIdentifier(eventLoop)] {
            return connection
        }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let connection = connections[ObjectIdentifier(current)] {
            return connection
        }
        let next = eventLoopGroup.next()
        guard let connection = connections[ObjectIdentifier(next)] else {
            preconditionFailure("the event loop group handed out a loop it did not list")
        }
        return connection
    }
}
