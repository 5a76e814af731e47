import Logging
import NIOCore
import NIOPosix

/// One Redis connection bound to one event loop, reconnecting by itself.
///
/// The I/O shell around ``RedisConnectionStateMachine``: it opens channels, installs a
/// ``RedisConnectionHandler`` and performs the machine's actions. Callers on `eventLoop` enqueue
/// without a thread hop; others hop once.
final class RedisConnection: Sendable {
    /// The loop this connection's channel and state live on.
    let eventLoop: EventLoop
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let state: NIOLoopBoundBox<LoopState>

    /// Mutable state, touched only on `eventLoop` (enforced by `NIOLoopBoundBox`).
    private final class LoopState {
        var machine: RedisConnectionStateMachine
        var handler: RedisConnectionHandler?
        var channel: Channel?
        var reconnectTask: Scheduled<Void>?
        var lostSince: NIODeadline?

        init(backoff: RedisBackoff) {
            self.machine = RedisConnectionStateMachine(backoff: backoff)
        }
    }

    init(configuration: RedisClient.Configuration, eventLoop: EventLoop, logger: Logger) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.state = .makeBoxSendingValue(LoopState(backoff: configuration.backoff), eventLoop: eventLoop)
    }

    /// Sends `command`; the returned future is on `eventLoop`.
    func send(_ command: RedisCommand, timeout: TimeAmount) -> EventLoopFuture<RedisValue> {
        let promise = eventLoop.makePromise(of: RedisValue.self)
        let deadline = eventLoop.now + timeout
        if eventLoop.inEventLoop {
            enqueue(command, deadline: deadline, promise: promise)
        } else {
            eventLoop.execute { self.enqueue(command, deadline: deadline, promise: promise) }
        }
        return promise.futureResult
    }

    /// Starts connecting now instead of at the first command.
    func start() {
        eventLoop.execute {
            let action = self.state.value.machine.start()
            self.perform(action)
        }
    }

    private func enqueue(_ command: RedisCommand, deadline: NIODeadline, promise: EventLoopPromise<RedisValue>) {
        let state = self.state.value
        switch state.machine.commandRequested() {
        case .enqueue:
            guard let handler = state.handler else {
                preconditionFailure("a connecting or connected Redis connection has a handler")
            }
            handler.enqueue(command, deadline: deadline, promise: promise)
        case .connectAndEnqueue:
            connect()
            state.handler!.enqueue(command, deadline: deadline, promise: promise)
        case .fail(let error):
            promise.fail(error)
        }
    }

    private func perform(_ action: RedisConnectionStateMachine.Action) {
        let state = self.state.value
        switch action {
        case .none:
            break
        case .connect:
            connect()
        case .scheduleReconnect(let delay):
            state.reconnectTask = eventLoop.assumeIsolated().scheduleTask(in: delay) {
                let state = self.state.value
                state.reconnectTask = nil
                self.perform(state.machine.reconnectTimerFired())
            }
        case .closeConnection:
            state.reconnectTask?.cancel()
            state.reconnectTask = nil
            state.handler?.close(with: .clientShutdown)
            state.channel?.close(promise: nil)
        }
    }

    private func connect() {
        let state = self.state.value
        let handler = RedisConnectionHandler(
            url: configuration.url,
            eventLoop: eventLoop,
            connectDeadline: eventLoop.now + configuration.connectTimeout,
            stallTimeout: configuration.stallTimeout,
            flushStrategy: configuration.flushStrategy
        )
        state.handler = handler
        state.channel = nil
        let boundHandler = NIOLoopBound(handler, eventLoop: eventLoop)
        let url = configuration.url

        ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(boundHandler.value)
                }
            }
            .connect(host: url.host, port: url.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.channelOpened(channel, handler: handler)
                case .failure(let error):
                    let failure = RedisClientError.connectFailed.withDetail(
                        "could not connect to Redis at \(url.host):\(url.port): \(error)")
                    handler.failAll(failure)
                    self.connectionEnded(handler: handler, error: failure)
                }
            }
    }

    private func channelOpened(_ channel: Channel, handler: RedisConnectionHandler) {
        let state = self.state.value
        guard state.handler === handler else {
            channel.close(promise: nil)
            return
        }
        state.channel = channel
        channel.closeFuture.assumeIsolated().whenComplete { _ in
            let error = handler.failure ?? .connectionClosed.withDetail("the connection to Redis closed")
            self.connectionEnded(handler: handler, error: error)
        }
        handler.ready.assumeIsolated().whenSuccess {
            let state = self.state.value
            guard state.handler === handler else { return }
            state.machine.connectionReady().assertNone()
            if let lostSince = state.lostSince {
                self.logger.notice(
                    "Redis connection restored",
                    metadata: [
                        "redis": "\(self.configuration.url)",
                        "unavailable_ms": "\((self.eventLoop.now - lostSince).nanoseconds / 1_000_000)",
                    ])
                state.lostSince = nil
            } else {
                self.logger.debug("connected to Redis", metadata: ["redis": "\(self.configuration.url)"])
            }
        }
    }

    private func connectionEnded(handler: RedisConnectionHandler, error: RedisClientError) {
        let state = self.state.value
        guard state.handler === handler else { return }
        state.handler = nil
        state.channel = nil
        let action = state.machine.connectionClosed(
            error: error, random: Double.random(in: 0..<1), servedReplies: handler.servedReplies)
        if case .shutDown = state.machine.state { return }
        if state.lostSince == nil {
            state.lostSince = self.eventLoop.now
            logger.warning(
                "Redis unavailable; retrying with backoff",
                metadata: [
                    "redis": "\(configuration.url)", "error": "\(error.detail)",
                ])
        } else {
            logger.debug("Redis reconnect failed", metadata: ["redis": "\(configuration.url)", "error": "\(error.detail)"])
        }
        perform(action)
    }

    /// Closes the connection; pending and later commands fail with ``RedisClientError/clientShutdown``.
    func shutdown() -> EventLoopFuture<Void> {
        eventLoop.submit {
            let state = self.state.value
            let channel = state.channel
            self.perform(state.machine.shutdown())
            state.handler = nil
            return channel
        }.flatMap { channel in
            channel?.closeFuture ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }
}

extension RedisConnectionStateMachine.Action {
    fileprivate func assertNone() {
        assert(self == .none)
    }
}
