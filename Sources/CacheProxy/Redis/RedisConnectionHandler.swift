import NIOCore

/// The protocol half of a Redis connection: encodes nothing itself (commands arrive encoded),
/// batches their bytes, parses replies with hiredis and completes callers in FIFO order.
///
/// Commands can be enqueued before the channel is active; they are sent, after the hand-shake
/// commands (`AUTH`, `SELECT`), as soon as it is. Writes are collected in one buffer and flushed
/// once per event-loop pass, so commands issued together share one `write(2)`.
///
/// Timeouts use one timer per connection, armed at the earliest deadline. A command that times
/// out keeps its place in the FIFO (its reply will still come and is dropped); if the oldest
/// command stays unanswered for `stallTimeout` past its deadline the connection is closed.
///
/// Confined to its channel's event loop.
final class RedisConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// When writes are flushed.
    enum FlushStrategy: Sendable {
        /// Once per event-loop pass, after every command enqueued in that pass (the default).
        case batched
        /// After every command (only for comparison in benchmarks).
        case perCommand
    }

    private enum Kind {
        case command
        case auth
        case select
    }

    private struct Pending {
        var promise: EventLoopPromise<RedisValue>?
        let deadline: NIODeadline
        let kind: Kind
    }

    private let eventLoop: EventLoop
    private let reader = HiredisReader()
    private let flushStrategy: FlushStrategy
    private let stallTimeout: TimeAmount
    private let endpoint: String

    private var context: ChannelHandlerContext?
    private var pending = CircularBuffer<Pending>(initialCapacity: 64)
    private var outbound: ByteBuffer
    private var isActive = false
    private var flushScheduled = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var handshakeRemaining = 0
    private let readyPromise: EventLoopPromise<Void>
    /// Set once the connection failed; new commands fail with it at once.
    private(set) var failure: RedisClientError?

    /// Succeeds when the hand-shake is done and the connection is usable; fails if it never is.
    var ready: EventLoopFuture<Void> { readyPromise.futureResult }

    /// - Parameters:
    ///   - url: the endpoint; its password and database decide the hand-shake.
    ///   - connectDeadline: by when the hand-shake must be answered.
    ///   - stallTimeout: how long past its deadline the oldest command may stay unanswered.
    init(
        url: RedisURL,
        eventLoop: EventLoop,
        connectDeadline: NIODeadline,
        stallTimeout: TimeAmount,
        flushStrategy: FlushStrategy
    ) {
        self.eventLoop = eventLoop
        self.flushStrategy = flushStrategy
        self.stallTimeout = stallTimeout
        self.endpoint = "\(url.host):\(url.port)"
        self.outbound = ByteBufferAllocator().buffer(capacity: 4096)
        self.readyPromise = eventLoop.makePromise()

        if let password = url.password {
            var arguments: [RedisArgument] = []
            if let username = url.username { arguments.append(.string(username)) }
            arguments.append(.string(password))
            appendHandshake(RedisCommand("AUTH", arguments), kind: .auth, deadline: connectDeadline)
        }
        if url.database != 0 {
            appendHandshake(RedisCommand("SELECT", [.integer(url.database)]), kind: .select, deadline: connectDeadline)
        }
        if handshakeRemaining == 0 {
            readyPromise.succeed()
        } else {
            armTimer(for: connectDeadline)
        }
    }

    private func appendHandshake(_ command: RedisCommand, kind: Kind, deadline: NIODeadline) {
        pending.append(Pending(promise: nil, deadline: deadline, kind: kind))
        outbound.writeImmutableBuffer(command.encoded)
        handshakeRemaining += 1
    }

    /// Whether the server answered at least one command (hand-shake replies aside).
    private(set) var servedReplies = false

    // MARK: Commands

    /// Queues `command`; `promise` completes with its reply, a ``RedisServerError`` for an error
    /// reply, or a ``RedisClientError``. Must be called on the event loop.
    func enqueue(_ command: RedisCommand, deadline: NIODeadline, promise: EventLoopPromise<RedisValue>) {
        eventLoop.preconditionInEventLoop()
        if let failure {
            promise.fail(failure)
            return
        }
        pending.append(Pending(promise: promise, deadline: deadline, kind: .command))
        outbound.writeImmutableBuffer(command.encoded)
        armTimer(for: deadline)
        guard isActive else { return }
        switch flushStrategy {
        case .perCommand:
            flush()
        case .batched:
            if !flushScheduled {
                flushScheduled = true
                eventLoop.assumeIsolated().execute { self.flush() }
            }
        }
    }

    private func flush() {
        flushScheduled = false
        guard isActive, let context, outbound.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(outbound), promise: nil)
        if outbound.capacity > 1 << 16 {
            outbound = context.channel.allocator.buffer(capacity: 4096)
        } else {
            outbound.clear()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            becameActive()
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        becameActive()
        context.fireChannelActive()
    }

    private func becameActive() {
        guard !isActive, failure == nil else { return }
        isActive = true
        flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            _ = try reader.drain(buffer, into: deliver)
        } catch {
            close(with: error)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        failAll(failure ?? .connectionClosed.withDetail("the connection to Redis at \(endpoint) closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        close(with: .connectionClosed.withDetail("connection to Redis at \(endpoint) failed: \(error)"))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(failure ?? .connectionClosed.withDetail("the connection to Redis at \(endpoint) closed"))
        self.context = nil
    }

    /// Hands a reply to the oldest pending command. Returns false if the connection was closed.
    private func deliver(_ reply: RedisValue) -> Bool {
        guard let head = pending.popFirst() else {
            close(with: .protocolError.withDetail("Redis at \(endpoint) sent a reply nobody asked for"))
            return false
        }
        switch head.kind {
        case .command:
            servedReplies = true
            guard let promise = head.promise else { return true }  // timed out earlier
            if case .error(let error) = reply {
                promise.fail(error)
            } else {
                promise.succeed(reply)
            }
        case .auth, .select:
            if case .error(let error) = reply {
                let kind: RedisClientError = head.kind == .auth ? .authenticationFailed : .handshakeFailed
                let command = head.kind == .auth ? "AUTH" : "SELECT"
                close(with: kind.withDetail("Redis at \(endpoint) rejected \(command): \(error.message)"))
                return false
            }
            handshakeRemaining -= 1
            if handshakeRemaining == 0 {
                readyPromise.succeed()
            }
        }
        return true
    }

    // MARK: Failure

    /// Fails every pending command with `error` and closes the channel.
    func close(with error: RedisClientError) {
        if failure == nil { failure = error }
        failAll(error)
        context?.close(promise: nil)
    }

    /// Fails every pending command; later commands fail at once. Safe to call more than once.
    func failAll(_ error: RedisClientError) {
        if failure == nil { failure = error }
        timer?.cancel()
        timer = nil
        timerDeadline = nil
        readyPromise.fail(error)
        while let entry = pending.popFirst() {
            entry.promise?.fail(error)
        }
    }

    // MARK: Timeouts

    private func armTimer(for deadline: NIODeadline) {
        if let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDeadline = nil
        let now = eventLoop.now
        var next: NIODeadline?
        // Promises are failed after the scan: their callbacks may enqueue new commands.
        var expired: [EventLoopPromise<RedisValue>] = []
        for index in pending.indices {
            let entry = pending[index]
            switch entry.kind {
            case .auth, .select:
                if entry.deadline <= now {
                    close(with: .connectFailed.withDetail("Redis at \(endpoint) did not answer the connection hand-shake in time"))
                    return
                }
                next = min(next ?? entry.deadline, entry.deadline)
            case .command:
                guard let promise = entry.promise else { continue }
                if entry.deadline <= now {
                    pending[index].promise = nil
                    expired.append(promise)
                } else {
                    next = min(next ?? entry.deadline, entry.deadline)
                }
            }
        }
        if let oldest = pending.first, oldest.promise == nil, oldest.kind == .command {
            let stallDeadline = oldest.deadline + stallTimeout
            if stallDeadline <= now {
                close(
                    with: .connectionStalled.withDetail(
                        "Redis at \(endpoint) has not answered for \(stallTimeout) past a command's deadline"))
                for promise in expired { promise.fail(RedisClientError.timeout) }
                return
            }
            next = min(next ?? stallDeadline, stallDeadline)
        }
        if let next {
            armTimer(for: next)
        }
        for promise in expired {
            promise.fail(RedisClientError.timeout)
        }
    }
}

@available(*, unavailable)
extension RedisConnectionHandler: Sendable {}
