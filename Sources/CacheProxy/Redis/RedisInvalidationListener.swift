import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Keeps a ``MemoryCache`` coherent with Redis, through Redis's server-assisted client-side
/// caching: one dedicated connection runs
///
/// ```
/// CLIENT ID                                         → n
/// CLIENT TRACKING on REDIRECT n BCAST PREFIX <key_prefix>v2:
/// SUBSCRIBE __redis__:invalidate
/// ```
///
/// so Redis itself pushes, on this connection, the name of every entry key that changes, whoever
/// changed it and however: a store by any instance, a purge script, a soft purge's SETRANGE,
/// expiry, eviction under `maxmemory`, a `DEL` typed by an operator. `FLUSHALL`/`FLUSHDB` push a
/// null, which drops the whole tier. Broadcasting mode (BCAST) needs no per-key state in Redis
/// and no tracking on the lookup connections; it costs one push per changed entry, which is what
/// an explicit pub/sub channel would cost, except that such a channel would miss expiry, eviction
/// and anything not done by the proxy.
///
/// The tier is coherent only while this connection is subscribed: before the `subscribe`
/// confirmation and from the moment it drops, ``MemoryCache/coherenceChanged(live:)`` empties
/// and bypasses it. The connection reconnects with backoff.
///
/// ``barrier(on:)`` gives read-your-writes on this instance: a `PING` sent after a purge
/// returned comes back after every invalidation that purge caused (one connection, in order).
public final class RedisInvalidationListener: Sendable {
    /// The channel Redis pushes invalidations on (RESP2 redirect mode).
    static let channel = "__redis__:invalidate"

    private let url: RedisURL
    private let keyPrefix: String
    private let memory: MemoryCache
    private let eventLoop: EventLoop
    private let backoff: RedisBackoff
    private let connectTimeout: TimeAmount
    private let barrierTimeout: TimeAmount
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var channel: Channel?
        var handler: NIOLoopBound<InvalidationHandler>?
        var attempt = 0
        var closed = false
        var connects = 0
    }

    /// - Parameters:
    ///   - keyPrefix: the configuration's `redis.key_prefix`; entry keys are this, `v2:`, the digest.
    ///   - barrierTimeout: how long ``barrier(on:)`` waits for its `PING`; past it the tier is
    ///     emptied instead.
    public init(
        url: RedisURL, keyPrefix: String, memory: MemoryCache, eventLoop: EventLoop, backoff: RedisBackoff = RedisBackoff(),
        connectTimeout: TimeAmount = .seconds(1), barrierTimeout: TimeAmount = .seconds(1), logger: Logger
    ) {
        self.url = url
        self.keyPrefix = keyPrefix
        self.memory = memory
        self.eventLoop = eventLoop
        self.backoff = backoff
        self.connectTimeout = connectTimeout
        self.barrierTimeout = barrierTimeout
        self.logger = logger
    }

    /// The key prefix whose changes Redis reports: every entry key.
    var trackedPrefix: String { keyPrefix + CacheKey.versionTag }

    /// Connects (in the background, retrying until ``shutdown()``).
    public func start() {
        eventLoop.execute { self.connect() }
    }

    /// Closes the connection; no reconnect.
    public func shutdown() async {
        let channel = state.withLockedValue { state -> Channel? in
            state.closed = true
            return state.channel
        }
        try? await channel?.close()
        memory.coherenceChanged(live: false)
    }

    /// How many times it has subscribed (for tests: a reconnect shows as an increase).
    public var subscriptions: Int { state.withLockedValue { $0.connects } }

    /// Completes once every invalidation Redis produced before this call has been applied to the
    /// tier: at once when the tier is not live (it is empty), else when a `PING` sent now comes
    /// back. Never fails: on a timeout the tier is emptied.
    public func barrier(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        guard memory.isEnabled else { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        self.eventLoop.execute {
            guard let handler = self.state.withLockedValue({ $0.handler })?.value, handler.isLive else {
                promise.succeed()
                return
            }
            handler.ping(promise)
            self.eventLoop.scheduleTask(in: self.barrierTimeout) {
                if handler.expire(promise) {
                    self.logger.warning("Redis did not answer an invalidation barrier in time; the memory tier was emptied")
                    self.memory.invalidateAll()
                }
            }
        }
        return promise.futureResult
    }

    private func connect() {
        guard !state.withLockedValue({ $0.closed }) else { return }
        var handshake: [RedisCommand] = []
        if let password = url.password {
            handshake.append(RedisCommand("AUTH", (url.username.map { [.string($0)] } ?? []) + [.string(password)]))
        }
        handshake.append(RedisCommand("CLIENT", ["ID"]))
        let prefix = trackedPrefix
        let memory = self.memory
        let acknowledgements = handshake.count - 1
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = InvalidationHandler(
                        prefix: prefix, memory: memory, acknowledgements: acknowledgements,
                        onSubscribed: { [weak self] in
                            self?.state.withLockedValue {
                                $0.attempt = 0
                                $0.connects += 1
                            }
                        },
                        onRefused: { [weak self] error in self?.refused(error) })
                    try channel.pipeline.syncOperations.addHandler(handler)
                    self.state.withLockedValue { $0.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                }
            }
            .connect(host: url.host, port: url.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let closed = self.state.withLockedValue { state -> Bool in
                        if !state.closed { state.channel = channel }
                        return state.closed
                    }
                    if closed {
                        channel.close(promise: nil)
                        return
                    }
                    var buffer = channel.allocator.buffer(capacity: 128)
                    for command in handshake { buffer.writeImmutableBuffer(command.encoded) }
                    channel.writeAndFlush(buffer, promise: nil)
                    channel.closeFuture.whenComplete { _ in self.lost() }
                case .failure(let error):
                    self.logger.debug("Redis invalidation listener could not connect", metadata: ["error": "\(error)"])
                    self.lost()
                }
            }
    }

    /// Redis answered the handshake with an error (an old Redis without CLIENT TRACKING, a wrong
    /// password, an ACL): said once per outage, since the listener keeps retrying.
    private func refused(_ error: RedisServerError) {
        guard state.withLockedValue({ $0.attempt == 0 }) else { return }
        logger.warning(
            "Redis refused the invalidation listener (CLIENT TRACKING needs Redis 6 or later): the memory tier is off until it accepts",
            metadata: ["error": "\(error.message)", "redis": "\(url)"])
    }

    /// On the listener's event loop.
    private func lost() {
        memory.coherenceChanged(live: false)
        let handler = state.withLockedValue { $0.handler }
        handler?.value.failBarriers()
        let attempt = state.withLockedValue { state -> Int? in
            state.channel = nil
            state.handler = nil
            guard !state.closed else { return nil }
            state.attempt += 1
            return state.attempt
        }
        guard let attempt else { return }
        if attempt == 1 {
            logger.warning("lost the Redis invalidation listener: the memory tier is off until it is back", metadata: ["redis": "\(url)"])
        }
        let delay = backoff.delay(attempt: attempt - 1, random: Double.random(in: 0...1))
        eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}

/// The listener connection: finishes the handshake (the tracking command needs the connection's
/// own id), then applies pushes to the tier and answers barriers.
private final class InvalidationHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private enum Phase {
        /// Waiting for replies to AUTH (count) then for `CLIENT ID`.
        case handshake(acknowledgements: Int)
        /// Tracking asked, waiting for its `+OK` and the `subscribe` confirmation.
        case subscribing
        case live
    }

    private let reader = HiredisReader()
    private let prefix: String
    private let memory: MemoryCache
    private let onSubscribed: @Sendable () -> Void
    private let onRefused: @Sendable (RedisServerError) -> Void
    private var phase: Phase
    private var context: ChannelHandlerContext?
    /// Barriers whose `PING` is on the wire, oldest first; nil: timed out.
    private var barriers = CircularBuffer<EventLoopPromise<Void>?>()

    init(
        prefix: String, memory: MemoryCache, acknowledgements: Int, onSubscribed: @escaping @Sendable () -> Void,
        onRefused: @escaping @Sendable (RedisServerError) -> Void
    ) {
        self.onRefused = onRefused
        self.prefix = prefix
        self.memory = memory
        self.phase = .handshake(acknowledgements: acknowledgements)
        self.onSubscribed = onSubscribed
    }

    var isLive: Bool {
        if case .live = phase { return true }
        return false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while let reply = try reader.next() {
                handle(reply, context: context)
            }
        } catch {
            context.close(promise: nil)
        }
    }

    /// Sends a `PING` whose `pong` completes `promise`.
    func ping(_ promise: EventLoopPromise<Void>) {
        guard let context else {
            promise.succeed()
            return
        }
        barriers.append(promise)
        context.writeAndFlush(NIOAny(RedisCommand("PING").encoded), promise: nil)
    }

    /// Gives up on a barrier: true if it was still waiting (the caller empties the tier).
    func expire(_ promise: EventLoopPromise<Void>) -> Bool {
        guard let index = barriers.firstIndex(where: { $0?.futureResult === promise.futureResult }) else { return false }
        barriers[index] = nil
        promise.succeed()
        return true
    }

    /// The connection is gone (the tier was emptied): every barrier is passed.
    func failBarriers() {
        while let barrier = barriers.popFirst() { barrier?.succeed() }
    }

    private func handle(_ reply: RedisValue, context: ChannelHandlerContext) {
        switch phase {
        case .handshake(let acknowledgements):
            if case .error(let error) = reply {
                onRefused(error)
                return close(context)
            }
            if acknowledgements > 0 {
                phase = .handshake(acknowledgements: acknowledgements - 1)
                return
            }
            guard case .integer(let id) = reply else { return close(context) }
            var buffer = context.channel.allocator.buffer(capacity: 128)
            buffer.writeImmutableBuffer(
                RedisCommand("CLIENT", ["TRACKING", "on", "REDIRECT", .integer(id), "BCAST", "PREFIX", .string(prefix)]).encoded)
            buffer.writeImmutableBuffer(RedisCommand("SUBSCRIBE", [.string(RedisInvalidationListener.channel)]).encoded)
            context.writeAndFlush(NIOAny(buffer), promise: nil)
            phase = .subscribing
        case .subscribing:
            switch reply {
            case .simpleString:
                return  // +OK of CLIENT TRACKING
            case .array(let parts) where parts.count == 3 && parts[0].string == "subscribe":
                phase = .live
                memory.coherenceChanged(live: true)
                onSubscribed()
            case .error(let error):
                onRefused(error)
                close(context)
            default:
                close(context)
            }
        case .live:
            guard case .array(let parts) = reply, let kind = parts.first?.string else { return close(context) }
            switch kind {
            case "message" where parts.count == 3:
                switch parts[2] {
                case .array(let keys): memory.invalidate(digests: keys.lazy.compactMap { self.digest(ofKey: $0) })
                case .null: memory.invalidateAll()  // FLUSHALL / FLUSHDB
                default: memory.invalidateAll()
                }
            case "pong":
                // Pongs come back in the order the pings went; a timed-out barrier's slot is nil.
                if let barrier = barriers.popFirst() { barrier?.succeed() }
            default:
                break
            }
        }
    }

    private func digest(ofKey key: RedisValue) -> String? {
        guard let name = key.string, name.utf8.starts(with: prefix.utf8) else { return nil }
        return String(decoding: name.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// Anything unexpected ends the connection; the listener reconnects and the tier stays off until then.
    private func close(_ context: ChannelHandlerContext) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
