import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The caching reverse proxy: an HTTP/1.1 server whose connections are served by
/// ``ProxyHandler``, with Redis and the upstream pools on the same event loops.
///
/// ```swift
/// let server = ProxyServer(configuration: try .load(path: "config/example.yaml"), eventLoopGroup: group)
/// let address = try await server.start()
/// try await server.waitUntilClosed()
/// ```
public final class ProxyServer: Sendable {
    /// The configuration it serves.
    public let configuration: ProxyConfiguration
    private let group: EventLoopGroup
    private let logger: Logger
    private let redis: RedisClient
    /// Stores go on their own connections: a large SET queued ahead of lookups on a shared
    /// connection delayed them past `redis.timeout` (`make bench-redis-mixed`, 8 MiB values:
    /// p99 58 ms shared, 20 ms separate).
    private let redisStores: RedisClient
    private let shared: ProxyContext
    /// Fill announcements from every instance's released leases, on a dedicated connection.
    private let fills: RedisSubscriber
    /// The in-memory tier in front of Redis.
    let memory: MemoryCache
    /// Keeps ``memory`` coherent (client-side caching invalidations), on a dedicated connection.
    let invalidations: RedisInvalidationListener
    private let serverChannel = NIOLockedValueBox<Channel?>(nil)
    private let adminChannel = NIOLockedValueBox<Channel?>(nil)
    private let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
    private let shutdownTask = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// Creates a server; nothing is bound until ``start()``.
    ///
    /// - Parameters:
    ///   - logger: where warnings and (at debug level) one line per request go. Default: discards everything.
    ///   - clock: wall clock in milliseconds since the epoch, for entry ages. Default: the system clock.
    ///   - clientIdleTimeout: replaces the configuration's `client.keepalive_timeout` when given.
    ///     Default nil.
    public init(
        configuration: ProxyConfiguration,
        eventLoopGroup: EventLoopGroup,
        logger: Logger = Logger(label: "cache-proxy", factory: { _ in SwiftLogNoOpLogHandler() }),
        clock: @escaping @Sendable () -> Int64 = RedisCacheStorage.systemClock,
        clientIdleTimeout: TimeAmount? = nil
    ) {
        var configuration = configuration
        if let clientIdleTimeout { configuration.client.keepAliveTimeout = clientIdleTimeout }
        self.configuration = configuration
        self.group = eventLoopGroup
        self.logger = logger
        self.redis = RedisClient(
            configuration: .init(
                url: configuration.redis.url, connectTimeout: .seconds(1), commandTimeout: configuration.redis.timeout,
                stallTimeout: .seconds(5)),
            eventLoopGroup: eventLoopGroup, logger: logger)
        self.redisStores = RedisClient(
            configuration: .init(
                url: configuration.redis.url, connectTimeout: .seconds(1), commandTimeout: configuration.redis.timeout,
                stallTimeout: .seconds(5)),
            eventLoopGroup: eventLoopGroup, logger: logger)
        let memory = MemoryCache(maxBytes: configuration.memory.maxBytes, maxEntryBytes: configuration.memory.maxEntryBytes)
        self.memory = memory
        self.invalidations = RedisInvalidationListener(
            url: configuration.redis.url, keyPrefix: configuration.redis.keyPrefix, memory: memory, eventLoop: eventLoopGroup.next(),
            barrierTimeout: max(configuration.redis.purgeTimeout, .milliseconds(100)), logger: logger)
        let storage = RedisCacheStorage(
            redis: redis, stores: redisStores, keyPrefix: configuration.redis.keyPrefix, timeout: configuration.redis.timeout,
            purgeTimeout: configuration.redis.purgeTimeout, clock: clock, memory: memory, invalidations: invalidations)
        let shared = ProxyContext(configuration: configuration, storage: storage, eventLoopGroup: eventLoopGroup, logger: logger)
        self.shared = shared
        self.fills = RedisSubscriber(
            url: configuration.redis.url, channel: configuration.redis.keyPrefix + "fills", eventLoop: eventLoopGroup.next(),
            logger: logger,
            onMessage: { digest in shared.leases.fillAnnounced(String(buffer: digest)) })
    }

    /// Connects to Redis (in the background: the proxy serves, uncached, while Redis is away) and
    /// binds the listening socket. Returns the bound address (useful with port 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        Self.raiseOpenFileLimit()
        redis.connect()
        redisStores.connect()
        fills.start()
        if memory.isEnabled { invalidations.start() }
        let shared = self.shared
        let connections = self.connections
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = ObjectIdentifier(channel)
                    connections.withLockedValue { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in
                        _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                    }
                    // Requests are parsed by ProxyHandler itself (HTTPRequestParser) and responses
                    // written by it as bytes (ResponseWire), with every framing header set by the proxy.
                    try channel.pipeline.syncOperations.addHandler(
                        ProxyHandler(shared: shared, clientAddress: channel.remoteAddress?.ipAddress))
                }
            }
            .bind(host: configuration.listen.host, port: configuration.listen.port)
            .get()
        serverChannel.withLockedValue { $0 = channel }
        if configuration.admin.listen != nil {
            let admin = AdminServer(
                settings: configuration.admin, storage: shared.storage, policy: shared.settings.policy, logger: logger)
            let adminChannel = try await admin.start(group: group)
            self.adminChannel.withLockedValue { $0 = adminChannel }
            logger.info("admin API listening", metadata: ["address": "\(adminChannel.localAddress!)"])
        }
        let address = channel.localAddress!
        logger.info(
            "cache-proxy listening",
            metadata: [
                "address": "\(address)", "upstream": "\(configuration.upstream)", "redis": "\(configuration.redis.url)",
                "routes": "\(configuration.routes.count)",
            ])
        return address
    }

    /// Background refreshes in progress (for tests and metrics).
    var backgroundRefreshes: Int { shared.refresher.inFlightCount }

    /// The admin listener's bound address, once started (nil when `admin.listen` is off).
    public var adminAddress: SocketAddress? {
        adminChannel.withLockedValue { $0?.localAddress }
    }

    /// Waits until the listening socket is closed (by ``shutdown(gracePeriod:)``).
    public func waitUntilClosed() async throws {
        guard let channel = serverChannel.withLockedValue({ $0 }) else { return }
        try await channel.closeFuture.get()
    }

    /// Stops accepting connections, lets requests in progress finish (closing idle keep-alive
    /// connections at once), waits up to `gracePeriod` for them, then closes what is left,
    /// the upstream pools and Redis, in that order. Calling it again waits for the first call.
    public func shutdown(gracePeriod: TimeAmount = .seconds(10)) async {
        let task = shutdownTask.withLockedValue { task in
            if task == nil {
                task = Task { await self.performShutdown(gracePeriod: gracePeriod) }
            }
            return task!
        }
        await task.value
    }

    private func performShutdown(gracePeriod: TimeAmount) async {
        if let channel = serverChannel.withLockedValue({ $0 }) {
            try? await channel.close()
        }
        if let channel = adminChannel.withLockedValue({ $0 }) {
            try? await channel.close()
        }
        for channel in connections.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ProxyHandler.ShutdownRequested())
        }
        let deadline = NIODeadline.now() + gracePeriod
        while NIODeadline.now() < deadline, !connections.withLockedValue({ $0.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in connections.withLockedValue({ Array($0.values) }) {
            try? await channel.close()
        }
        // Background refreshes: finished if they can be within what is left of the grace period.
        await shared.refresher.shutdown(gracePeriod: max(.zero, deadline - NIODeadline.now()))
        await shared.closeIdleUpstreamConnections()
        await fills.shutdown()
        await invalidations.shutdown()
        await redis.shutdown()
        await redisStores.shutdown()
        logger.info("cache-proxy stopped")
    }

    /// 1,000+ concurrent clients each with an upstream connection need more than the usual 1,024 descriptors.
    private static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 1 << 16)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
