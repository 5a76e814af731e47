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
/// A heartbeat `PING` every second proves the connection alive: a connection that went silent
/// (a NAT timeout, a host gone without a FIN) is closed after 3 s without its answer, which
/// empties and bypasses the tier like any loss.
public final class RedisInvalidationListener: Sendable {
    /// The channel Redis pushes invalidations on (RESP2 redirect mode).
    static let channel = "__redis__:invalidate"
    /// A listener that stayed subscribed this long had recovered: the next loss starts the
    /// backoff (and its warning) afresh.
    static let healthyAfter = TimeAmount.seconds(5)

    private let url: RedisURL
    private let keyPrefix: String
    private let memory: MemoryCache
    private let eventLoop: EventLoop
    private let backoff: RedisBackoff
    private let connectTimeout: TimeAmount
    private let barrierTimeout: TimeAmount
    private let heartbeat: InvalidationHandler.Heartbeat
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    private struct State {
        var channel: Channel?
        var handler: NIOLoopBound<InvalidationHandler>?
        var attempt = 0
        var closed = false
        var connects = 0
        var subscribedAt: NIODeadline?
        /// An outage was logged; the next subscription says it is over.
        var outageLogged = false
        /// Tests: how long the next connections hold every byte from Redis before handling it.
        var pushDelay = TimeAmount.zero
    }

    /// - Parameters:
    ///   - keyPrefix: the configuration's `redis.key_prefix`; entry keys are this, `v2:`, the digest.
    ///   - barrierTimeout: how long ``barrier(on:)`` waits for its `PING`; past it the connection
    ///     is closed (emptying the tier) and the barrier passes.
    public init(
        url: RedisURL, keyPrefix: String, memory: MemoryCache, eventLoop: EventLoop, backoff: RedisBackoff = RedisBackoff(),
        connectTimeout: TimeAmount = .seconds(1), barrierTimeout: TimeAmount = .seconds(1),
        heartbeatInterval: TimeAmount = .seconds(1), heartbeatTimeout: TimeAmount = .seconds(3), logger: Logger
    ) {
        self.url = url
        self.keyPrefix = keyPrefix
        self.memory = memory
        self.eventLoop = eventLoop
        self.backoff = backoff
        self.connectTimeout = connectTimeout
        self.barrierTimeout = barrierTimeout
        self.heartbeat = .init(interval: heartbeatInterval, timeout: heartbeatTimeout)
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

    /// Tests: delays everything Redis sends on connections made from now on, as a slow network
    /// would (proves that purges wait for their invalidations).
    func setPushDelayForTesting(_ delay: TimeAmount) {
        state.withLockedValue { $0.pushDelay = delay }
    }

    /// How many times it has subscribed (for tests: a reconnect shows as an increase).
    public var subscriptions: Int { state.withLockedValue { $0.connects } }

    /// Completes once every invalidation Redis produced before this call has been applied to the
    /// tier: at once when the tier is not live (it is empty and bypassed), else when a `PING`
    /// sent now comes back. Never fails: past `barrierTimeout` the connection is closed, which
    /// empties the tier, and the barrier passes.
    public func barrier(on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        guard memory.isEnabled else { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        self.eventLoop.execute {
            guard let handler = self.state.withLockedValue({ $0.handler })?.value, handler.isLive else {
                promise.succeed()
                return
            }
            handler.barrier(promise)
            self.eventLoop.scheduleTask(in: self.barrierTimeout) {
                if handler.expire(promise) {
                    self.logger.warning(
                        "Redis did not answer an invalidation barrier in time; reconnecting the listener (memory tier emptied)")
                }
            }
        }
        return promise.futureResult
    }

    private func connect() {
        guard !state.withLockedValue({ $0.closed }) else { return }
        let handshake = DedicatedRedisConnection.authentication(url) + [RedisCommand("CLIENT", ["ID"])]
        let prefix = trackedPrefix
        let memory = self.memory
        let acknowledgements = handshake.count - 1
        let heartbeat = self.heartbeat
        let pushDelay = state.withLockedValue { $0.pushDelay }
        DedicatedRedisConnection.open(
            url: url, eventLoop: eventLoop, connectTimeout: connectTimeout, handshake: handshake,
            initialize: { channel in
                let handler = InvalidationHandler(
                    prefix: prefix, memory: memory, acknowledgements: acknowledgements, heartbeat: heartbeat,
                    onSubscribed: { [weak self] in self?.subscribed() },
                    onRefused: { [weak self] error in self?.refused(error) })
                if pushDelay > .zero { try channel.pipeline.syncOperations.addHandler(DelayedInbound(delay: pushDelay)) }
                try channel.pipeline.syncOperations.addHandler(handler)
                self.state.withLockedValue { $0.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
            },
            claim: { channel in
                self.state.withLockedValue { state in
                    if !state.closed { state.channel = channel }
                    return !state.closed
                }
            },
            closed: { error in
                if let error { self.logger.debug("Redis invalidation listener could not connect", metadata: ["error": "\(error)"]) }
                self.lost()
            })
    }

    private func subscribed() {
        let recovered = state.withLockedValue { state -> Bool in
            state.connects += 1
            state.subscribedAt = .now()
            defer { state.outageLogged = false }
            return state.outageLogged
        }
        if recovered { logger.info("Redis invalidation listener subscribed again: the memory tier is back", metadata: ["redis": "\(url)"]) }
    }

    /// Redis answered the handshake with an error (an old Redis without CLIENT TRACKING, a wrong
    /// password, an ACL): said once per outage, since the listener keeps retrying.
    private func refused(_ error: RedisServerError) {
        let first = state.withLockedValue { state -> Bool in
            defer { state.outageLogged = true }
            return !state.outageLogged
        }
        guard first else { return }
        logger.warning(
            "Redis refused the invalidation listener (CLIENT TRACKING needs Redis 6 or later): the memory tier is off until it accepts",
            metadata: ["error": "\(error.message)", "redis": "\(url)"])
    }

    /// On the listener's event loop.
    private func lost() {
        memory.coherenceChanged(live: false)
        let (attempt, warn) = state.withLockedValue { state -> (Int?, Bool) in
            state.channel = nil
            state.handler = nil
            guard !state.closed else { return (nil, false) }
            if let since = state.subscribedAt, NIODeadline.now() - since >= Self.healthyAfter { state.attempt = 0 }
            state.subscribedAt = nil
            state.attempt += 1
            defer { state.outageLogged = true }
            return (state.attempt, !state.outageLogged)
        }
        guard let attempt else { return }
        if warn {
            logger.warning("lost the Redis invalidation listener: the memory tier is off until it is back", metadata: ["redis": "\(url)"])
        }
        let delay = backoff.delay(attempt: attempt - 1, random: Double.random(in: 0...1))
        eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}

/// The listener connection: finishes the handshake (the tracking command needs the connection's
/// own id), then applies pushes to the tier, answers barriers and checks the connection with a
/// heartbeat. Anything unexpected closes it; from the moment it closes (or is found closed) the
/// tier is off.
final class InvalidationHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Heartbeat: Sendable {
        var interval: TimeAmount
        var timeout: TimeAmount
    }

    private enum Phase: Equatable {
        /// Waiting for replies to AUTH (count) then for `CLIENT ID`.
        case handshake(acknowledgements: Int)
        /// CLIENT TRACKING and SUBSCRIBE sent: waiting for TRACKING's `+OK`.
        case trackingRequested
        /// Tracking on: waiting for the `subscribe` confirmation.
        case subscribing
        case live
        case closed
    }

    /// A `PING` on the wire, in order.
    private enum Ping {
        case barrier(EventLoopPromise<Void>)
        case heartbeat
        /// A barrier that gave up (its pong is still to come).
        case expired
    }

    private let reader = HiredisReader()
    private let prefix: String
    private let memory: MemoryCache
    private let heartbeat: Heartbeat
    private let onSubscribed: @Sendable () -> Void
    private let onRefused: @Sendable (RedisServerError) -> Void
    private var phase: Phase
    private var context: ChannelHandlerContext?
    private var pings = CircularBuffer<Ping>()
    private var heartbeatDeadline: Scheduled<Void>?
    private var heartbeatTask: Scheduled<Void>?

    init(
        prefix: String, memory: MemoryCache, acknowledgements: Int, heartbeat: Heartbeat,
        onSubscribed: @escaping @Sendable () -> Void, onRefused: @escaping @Sendable (RedisServerError) -> Void
    ) {
        self.prefix = prefix
        self.memory = memory
        self.phase = .handshake(acknowledgements: acknowledgements)
        self.heartbeat = heartbeat
        self.onSubscribed = onSubscribed
        self.onRefused = onRefused
    }

    var isLive: Bool { phase == .live }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard phase != .closed else { return }
        do {
            _ = try reader.drain(unwrapInboundIn(data)) { reply in
                handle(reply, context: context)
                return phase != .closed
            }
        } catch {
            close(context)
        }
    }

    /// Sends a `PING` whose `pong` completes `promise`.
    func barrier(_ promise: EventLoopPromise<Void>) {
        guard let context, phase == .live else {
            promise.succeed()  // not live: the tier is empty and bypassed
            return
        }
        pings.append(.barrier(promise))
        context.writeAndFlush(wrapOutboundOut(RedisCommand("PING").encoded), promise: nil)
    }

    /// Gives up on a barrier: true if it was still waiting. The connection is closed (the tier
    /// emptied) before the barrier passes.
    func expire(_ promise: EventLoopPromise<Void>) -> Bool {
        guard
            let index = pings.firstIndex(where: {
                if case .barrier(let waiting) = $0 { return waiting.futureResult === promise.futureResult }
                return false
            })
        else { return false }
        pings[index] = .expired
        if let context { close(context) }
        promise.succeed()
        return true
    }

    private func handle(_ reply: RedisValue, context: ChannelHandlerContext) {
        if case .error(let error) = reply, phase != .live {
            onRefused(error)
            return close(context)
        }
        switch phase {
        case .handshake(let acknowledgements):
            if acknowledgements > 0 {
                phase = .handshake(acknowledgements: acknowledgements - 1)
                return
            }
            guard case .integer(let id) = reply else { return close(context) }
            var buffer = context.channel.allocator.buffer(capacity: 128)
            buffer.writeImmutableBuffer(
                RedisCommand("CLIENT", ["TRACKING", "on", "REDIRECT", .integer(id), "BCAST", "PREFIX", .string(prefix)]).encoded)
            buffer.writeImmutableBuffer(RedisCommand("SUBSCRIBE", [.string(RedisInvalidationListener.channel)]).encoded)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            phase = .trackingRequested
        case .trackingRequested:
            guard case .simpleString = reply else { return close(context) }
            phase = .subscribing
        case .subscribing:
            guard case .array(let parts) = reply, parts.count == 3, parts[0].string == "subscribe" else { return close(context) }
            phase = .live
            memory.coherenceChanged(live: true)
            startHeartbeat(context)
            onSubscribed()
        case .live:
            guard case .array(let parts) = reply, let kind = parts.first?.string else { return close(context) }
            switch kind {
            case "message" where parts.count == 3:
                switch parts[2] {
                case .array(let keys): memory.invalidate(digests: keys.lazy.compactMap { self.digest(ofKey: $0) })
                default: memory.invalidateAll()  // null: FLUSHALL / FLUSHDB
                }
            case "pong":
                // Pongs come back in the order the pings went.
                switch pings.popFirst() {
                case .barrier(let promise): promise.succeed()
                case .heartbeat:
                    heartbeatDeadline?.cancel()
                    heartbeatDeadline = nil
                case .expired, nil: break
                }
            default:
                break
            }
        case .closed:
            break
        }
    }

    /// Every `interval` while live: a `PING`, unless one is out; one unanswered after `timeout`
    /// closes the connection.
    private func startHeartbeat(_ context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        heartbeatTask = loop.scheduleTask(in: heartbeat.interval) {
            guard self.phase == .live, let context = self.context else { return }
            if self.heartbeatDeadline == nil {
                self.pings.append(.heartbeat)
                context.writeAndFlush(self.wrapOutboundOut(RedisCommand("PING").encoded), promise: nil)
                self.heartbeatDeadline = loop.scheduleTask(in: self.heartbeat.timeout) {
                    if let context = self.context { self.close(context) }
                }
            }
            self.startHeartbeat(context)
        }
    }

    private func digest(ofKey key: RedisValue) -> String? {
        guard let name = key.string, name.utf8.starts(with: prefix.utf8) else { return nil }
        return String(decoding: name.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
    }

    /// Ends the connection (the listener reconnects): the tier is off from this moment.
    private func close(_ context: ChannelHandlerContext) {
        stop()
        context.close(promise: nil)
    }

    /// The tier off, every barrier passed (the tier is empty), no more heartbeats.
    private func stop() {
        guard phase != .closed else { return }
        phase = .closed
        memory.coherenceChanged(live: false)
        heartbeatTask?.cancel()
        heartbeatTask = nil
        heartbeatDeadline?.cancel()
        heartbeatDeadline = nil
        while let ping = pings.popFirst() {
            if case .barrier(let promise) = ping { promise.succeed() }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        close(context)
    }
}

@available(*, unavailable)
extension InvalidationHandler: Sendable {}

/// Tests: passes every read on after `delay`, in order.
private final class DelayedInbound: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let delay: TimeAmount
    private var held = CircularBuffer<NIOAny>()

    init(delay: TimeAmount) { self.delay = delay }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(data)
        context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            if let data = self.held.popFirst() { context.fireChannelRead(data) }
        }
    }
}
