import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A dedicated Redis connection in subscribe mode (RESP2 pub/sub): `SUBSCRIBE channel`, then
/// every `message` pushed on it goes to `onMessage`. Reconnects with backoff when the
/// connection drops (and re-subscribes); `onConnectionChange` says when it is (not) listening,
/// so users can fall back to polling. Commands are encoded and replies parsed by hiredis like
/// every other connection; nothing blocks an event loop.
public final class RedisSubscriber: Sendable {
    private let url: RedisURL
    private let channelName: String
    private let eventLoop: EventLoop
    private let backoff: RedisBackoff
    private let connectTimeout: TimeAmount
    private let logger: Logger
    private let onMessage: @Sendable (ByteBuffer) -> Void
    private let onConnectionChange: @Sendable (Bool) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var channel: Channel?
        var attempt = 0
        var closed = false
    }

    /// - Parameters:
    ///   - onMessage: a message's payload; called on `eventLoop`.
    ///   - onConnectionChange: true once subscribed, false when the connection is lost.
    public init(
        url: RedisURL, channel: String, eventLoop: EventLoop, backoff: RedisBackoff = RedisBackoff(),
        connectTimeout: TimeAmount = .seconds(1),
        logger: Logger, onMessage: @escaping @Sendable (ByteBuffer) -> Void,
        onConnectionChange: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.url = url
        self.channelName = channel
        self.eventLoop = eventLoop
        self.backoff = backoff
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.onMessage = onMessage
        self.onConnectionChange = onConnectionChange
    }

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
    }

    private func connect() {
        guard !state.withLockedValue({ $0.closed }) else { return }
        let commands = DedicatedRedisConnection.authentication(url) + [RedisCommand("SUBSCRIBE", [.string(channelName)])]
        let channelName = self.channelName
        let onMessage = self.onMessage
        DedicatedRedisConnection.open(
            url: url, eventLoop: eventLoop, connectTimeout: connectTimeout, handshake: commands,
            initialize: { channel in
                let handler = SubscriberHandler(
                    channelName: channelName, handshake: commands.count, onMessage: onMessage,
                    onSubscribed: { [weak self] in
                        self?.state.withLockedValue { $0.attempt = 0 }
                        self?.onConnectionChange(true)
                    })
                try channel.pipeline.syncOperations.addHandler(handler)
            },
            claim: { channel in
                self.state.withLockedValue { state in
                    if !state.closed { state.channel = channel }
                    return !state.closed
                }
            },
            closed: { error in
                if let error { self.logger.debug("Redis subscriber could not connect", metadata: ["error": "\(error)"]) }
                self.lost()
            })
    }

    private func lost() {
        onConnectionChange(false)
        let attempt = state.withLockedValue { state -> Int? in
            state.channel = nil
            guard !state.closed else { return nil }
            state.attempt += 1
            return state.attempt
        }
        guard let attempt else { return }
        let delay = backoff.delay(attempt: attempt - 1, random: Double.random(in: 0...1))
        eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}

/// Parses the pushes of a subscribed connection with hiredis.
private final class SubscriberHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let reader = HiredisReader()
    private let channelName: String
    private var handshake: Int
    private let onMessage: @Sendable (ByteBuffer) -> Void
    private let onSubscribed: @Sendable () -> Void

    init(
        channelName: String, handshake: Int, onMessage: @escaping @Sendable (ByteBuffer) -> Void,
        onSubscribed: @escaping @Sendable () -> Void
    ) {
        self.channelName = channelName
        self.handshake = handshake
        self.onMessage = onMessage
        self.onSubscribed = onSubscribed
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

    private func handle(_ reply: RedisValue, context: ChannelHandlerContext) {
        guard case .array(let parts) = reply, parts.count == 3, let kind = parts[0].string else {
            // +OK of AUTH; anything else (an error reply) ends the connection.
            if case .simpleString = reply, handshake > 1 {
                handshake -= 1
                return
            }
            context.close(promise: nil)
            return
        }
        switch kind {
        case "subscribe":
            handshake = 0
            onSubscribed()
        case "message":
            if let payload = parts[2].bytes { onMessage(payload) }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
