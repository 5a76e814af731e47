import Logging
import NIOCore
import NIOHTTP1

/// The I/O shell of one client connection. It parses bytes with ``HTTPRequestParser``, feeds
/// every event (request parts, cache answers, upstream parts, timers, writability) to
/// ``ProxyStateMachine`` and performs the actions it returns. It makes no decisions.
///
/// Actions are performed in the order the machine produced them: an event that arrives while
/// actions are being performed (a pool that hands over a connection at once, a writability
/// change caused by a write) has its actions queued behind the current ones.
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    /// Sent by ``ProxyServer/shutdown(gracePeriod:)``: close when idle, or after the current response.
    struct ShutdownRequested {}

    private let shared: ProxyContext
    private var machine: ProxyStateMachine
    private var parser: HTTPRequestParser
    /// Bytes read but not parsed yet.
    private var inbound: ByteBuffer?
    private var parserFailed = false
    private var reading = true
    private var parsing = false
    private var upstreamFlushPending = false
    private var context: ChannelHandlerContext!
    private var pool: UpstreamPool!
    /// The upstream exchange in progress; events from any other are stale.
    private var upstream: UpstreamExchange?
    private var clientTimer = LazyTimer()
    private var upstreamTimer = LazyTimer()
    private var pending = CircularBuffer<ProxyStateMachine.Action>(initialCapacity: 8)
    private var performing = false
    /// The response being written has a chunked body (``ResponseWire/isChunked(_:)``).
    private var chunkedResponse = false
    /// Between `channelRead` and `channelReadComplete`: responses finished meanwhile (memory
    /// hits of pipelined requests) are flushed once, at the end of the read batch.
    private var inReadBatch = false
    private var clientFlushPending = false
    private static let empty = ByteBuffer()
    private static let crlf = ByteBuffer(string: "\r\n")
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")

    init(shared: ProxyContext, clientAddress: String?) {
        self.shared = shared
        self.machine = ProxyStateMachine(settings: shared.settings, clientAddress: clientAddress)
        self.parser = HTTPRequestParser(limits: shared.settings.client.parserLimits)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.pool = shared.pool(for: context.eventLoop)
    }

    func channelActive(context: ChannelHandlerContext) {
        perform(machine.connectionStarted())
        context.fireChannelActive()
    }

    // MARK: Client bytes

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !parserFailed else { return }
        inReadBatch = true
        if inbound == nil || inbound!.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound!.writeBuffer(&bytes)
        }
        parse()
    }

    /// Feeds parsed parts to the machine while it wants them. Upstream writes made meanwhile are
    /// flushed at the end, so a request refused later in the same read (a bad chunk after good
    /// ones) has its upstream connection closed before any of it is sent.
    private func parse() {
        guard !parsing, !parserFailed else { return }
        parsing = true
        defer {
            parsing = false
            if upstreamFlushPending {
                upstreamFlushPending = false
                upstream?.connection?.flush()
            }
        }
        while reading {
            // Parse even with no bytes left: an `end` may be pending after a head or a body.
            var buffer = inbound ?? Self.empty
            inbound = nil  // keep `buffer` uniquely referenced while the parser consumes it
            let event: HTTPRequestParser.Event
            do {
                event = try parser.next(&buffer)
            } catch {
                parserFailed = true
                perform(machine.requestFailed(error))
                return
            }
            inbound = buffer.readableBytes > 0 ? buffer : nil
            switch event {
            case .head(let head): perform(machine.requestHead(head))
            case .body(let body): perform(machine.requestBody(body))
            case .end: perform(machine.requestEnd())
            case .needMoreData:
                if parser.hasPartialHead(buffer) { perform(machine.partialHeadReceived()) }
                return
            }
        }
    }

    // MARK: Performing actions

    /// Performs an event's actions, then gives the array back to the machine for reuse (taken
    /// as `consuming`, so its storage is uniquely owned here and kept).
    private func perform(_ actions: consuming [ProxyStateMachine.Action]) {
        let list = actions
        guard !performing else {
            pending.append(contentsOf: list)
            machine.recycle(list)
            return
        }
        performing = true
        defer { performing = false }
        for action in list {
            perform(action)
        }
        machine.recycle(list)
        while let action = pending.popFirst() {
            perform(action)
        }
    }

    private func perform(_ action: ProxyStateMachine.Action) {
        switch action {
        case .sendContinue(let version):
            var buffer = context.channel.allocator.buffer(capacity: 32)
            ResponseWire.writeHead(HTTPResponseHead(version: version, status: .continue), into: &buffer)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        case .writeHead(let head):
            var buffer = context.channel.allocator.buffer(capacity: 512)
            ResponseWire.writeHead(head, into: &buffer)
            chunkedResponse = ResponseWire.isChunked(head)
            context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        case .writeEncodedHead(let bytes):
            chunkedResponse = false
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
        case .writeBody(let body):
            if chunkedResponse {
                guard body.readableBytes > 0 else { return }  // an empty chunk would end the body
                var header = context.channel.allocator.buffer(capacity: 24)
                ResponseWire.writeChunkHeader(size: body.readableBytes, into: &header)
                context.write(wrapOutboundOut(.byteBuffer(header)), promise: nil)
                context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil)
                context.write(wrapOutboundOut(.byteBuffer(Self.crlf)), promise: nil)
            } else {
                context.write(wrapOutboundOut(.byteBuffer(body)), promise: nil)
            }
        case .writeEnd(let close):
            let end = chunkedResponse ? Self.lastChunk : Self.empty
            chunkedResponse = false
            if close {
                let context = self.context!
                context.writeAndFlush(wrapOutboundOut(.byteBuffer(end))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            } else {
                if end.readableBytes > 0 { context.write(wrapOutboundOut(.byteBuffer(end)), promise: nil) }
                flushClient()
            }
        case .flush:
            flushClient()
        case .setClientReading(let wanted):
            setClientReading(wanted)
        case .closeClient:
            // A response finished earlier in this read batch is sent first (close fails unflushed writes).
            if clientFlushPending {
                clientFlushPending = false
                context.flush()
            }
            context.close(promise: nil)
        case .setTimer(let slot, let id, let delay):
            let deadline = NIODeadline.now() + delay
            switch slot {
            case .client: clientTimer.set(id: id, deadline: deadline)
            case .upstream: upstreamTimer.set(id: id, deadline: deadline)
            }
            schedule(slot)
        case .cancelTimer(.client):
            clientTimer.deadline = nil
        case .cancelTimer(.upstream):
            upstreamTimer.deadline = nil
        case .lookup(let key, let id):
            let storage = shared.storage
            let now = storage.now()
            if let entry = storage.memoryLookup(key, now: now) {
                perform(machine.lookupCompleted(request: id, .fresh(entry), now: now, fromMemory: true))
                return
            }
            storage.lookup(key, on: context.eventLoop).assumeIsolated().whenSuccess { read in
                self.perform(self.machine.lookupCompleted(request: id, read.lookup, generation: read.generation, now: storage.now()))
            }
        case .store(let request, let id):
            shared.storage.store(request, on: context.eventLoop).assumeIsolated().whenComplete { result in
                self.perform(self.machine.storeCompleted(request: id, result))
            }
        case .refresh(let job):
            shared.refresher.refresh(job, pool: pool)
        case .joinFetch(let digest, let id):
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let storage = shared.storage
            let role = shared.coalescer.join(digest, eventLoop: context.eventLoop) { delivery in
                let handler = loopBound.value
                handler.perform(handler.machine.fetchDelivered(request: id, delivery, now: storage.now()))
            }
            perform(machine.fetchJoined(request: id, role))
        case .completeFetch(let ticket, let outcome):
            shared.coalescer.complete(ticket, with: outcome)
        case .leaveFetch(let waiter):
            shared.coalescer.leave(waiter)
        case .lease(let key, let ttl, let waitLimit, let takenIsEnough, let id):
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let storage = shared.storage
            shared.leases.resolve(key, ttl: ttl, waitLimit: waitLimit, takenIsEnough: takenIsEnough, on: context.eventLoop) { resolution in
                let handler = loopBound.value
                handler.perform(handler.machine.leaseResolved(request: id, key: key, resolution, now: storage.now()))
            }
        case .releaseLease(let key, let token, let inRedis, let uncacheable):
            shared.leases.release(key, token: token, inRedis: inRedis, uncacheable: uncacheable, on: context.eventLoop)
        case .purge(let selector, let soft, let id):
            shared.storage.purge(selector, soft: soft, on: context.eventLoop).assumeIsolated().whenComplete { result in
                self.perform(self.machine.purgeCompleted(request: id, result))
            }
        case .acquireUpstream:
            acquireUpstream()
        case .writeUpstream(let parts):
            guard let connection = upstream?.connection else { return }
            for part in parts { connection.write(part) }
            if parsing {
                upstreamFlushPending = true
            } else {
                connection.flush()
            }
        case .setUpstreamReading(let wanted):
            upstream?.connection?.setReading(wanted)
        case .releaseUpstream:
            if let connection = upstream?.connection {
                connection.setReading(true)
                pool.release(connection)
            }
            upstream = nil
        case .closeUpstream:
            if let exchange = upstream {
                exchange.connection?.close()
                if let waiter = exchange.waiter { pool.cancel(waiter) }
            }
            upstream = nil
        case .log(let log):
            // One line per request at debug level: build nothing unless it is written.
            guard shared.logger.logLevel <= .debug else { return }
            var metadata: Logger.Metadata = [
                "method": "\(log.method)", "target": "\(log.target)", "status": "\(log.status)", "outcome": "\(log.outcome.name)",
                "cache_status": "\(log.outcome.cacheStatus)", "route": "\(log.route ?? "-")",
            ]
            if let detail = log.detail { metadata["detail"] = "\(detail)" }
            if let purged = log.purged { metadata["purged"] = "\(purged)" }
            shared.logger.debug("request", metadata: metadata)
        case .warn(let warning):
            warn(warning)
        }
    }

    /// Makes sure a task is scheduled no later than the slot's deadline. Setting and cancelling
    /// a timer (twice per request) only changes the deadline; the scheduled task, when it runs,
    /// re-schedules itself for a later deadline or does nothing if there is none.
    private func schedule(_ slot: ProxyStateMachine.TimerSlot) {
        let timer = slot == .client ? clientTimer : upstreamTimer
        guard let deadline = timer.deadline else { return }
        if let scheduledFor = timer.scheduledFor, scheduledFor <= deadline { return }
        timer.scheduled?.cancel()
        let scheduled = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.timerTaskRan(slot) }
        switch slot {
        case .client:
            clientTimer.scheduled = scheduled
            clientTimer.scheduledFor = deadline
        case .upstream:
            upstreamTimer.scheduled = scheduled
            upstreamTimer.scheduledFor = deadline
        }
    }

    private func timerTaskRan(_ slot: ProxyStateMachine.TimerSlot) {
        var timer = slot == .client ? clientTimer : upstreamTimer
        timer.scheduled = nil
        timer.scheduledFor = nil
        let fired = timer.deadline.map { $0 <= NIODeadline.now() } ?? false
        if fired { timer.deadline = nil }
        switch slot {
        case .client: clientTimer = timer
        case .upstream: upstreamTimer = timer
        }
        if fired {
            perform(machine.timerFired(slot, id: timer.id, now: shared.storage.now()))
        } else {
            schedule(slot)
        }
    }

    private func acquireUpstream() {
        let exchange = UpstreamExchange(handler: self)
        upstream = exchange
        exchange.waiter = pool.acquire { result in
            exchange.waiter = nil
            guard self.upstream === exchange else {
                // Abandoned while waiting: nothing was written, so the connection is clean.
                if case .success(let acquired) = result { self.pool.release(acquired.connection) }
                return
            }
            switch result {
            case .success(let acquired):
                exchange.connection = acquired.connection
                acquired.connection.begin(exchange)
                self.perform(self.machine.upstreamAcquired(reused: acquired.reused))
            case .failure(let error):
                self.perform(self.machine.upstreamAcquireFailed(error, now: self.shared.storage.now()))
            }
        }
    }

    private func warn(_ warning: ProxyStateMachine.ProxyWarning) {
        let redis = "\(shared.configuration.redis.url)"
        switch warning {
        case .redisLookupFailed(let error):
            shared.warnings.warning(
                "redis-lookup", "Redis lookup failed; forwarding requests uncached until it answers",
                metadata: ["error": "\(error)", "redis": "\(redis)"])
        case .corruptEntry(let detail):
            shared.warnings.warning("redis-corrupt", "a stored entry does not decode; treated as a miss", metadata: ["detail": "\(detail)"])
        case .redisStoreFailed(let error):
            shared.warnings.warning(
                "redis-store", "storing a response in Redis failed", metadata: ["error": "\(error)", "redis": "\(redis)"])
        case .purgeFailed(let error, let rule):
            shared.warnings.warning(
                "redis-purge", "an invalidation purge failed: entries it should have removed may be served until their TTL ends",
                metadata: ["error": "\(error)", "rule": "\(rule)", "redis": "\(redis)"])
        case .invalidationBodyTooLarge(let rule):
            shared.warnings.warning(
                "invalidation-body", "a write's body is larger than its invalidation rule reads: its {body.…} tags were not purged",
                metadata: ["rule": "\(rule)"])
        case .upstreamError(let status, let detail):
            shared.warnings.warning(
                "upstream-\(status)", "upstream error; answering \(status)",
                metadata: ["error": "\(detail)", "upstream": "\(shared.configuration.upstream)"])
        case .requestRejected(let rejection):
            shared.logger.debug(
                "request refused",
                metadata: ["status": "\(rejection.status.code)", "reason": "\(rejection.reason.rawValue)", "detail": "\(rejection.detail)"])
        }
    }

    private func setClientReading(_ wanted: Bool) {
        reading = wanted
        if let options = context.channel.syncOptions, (try? options.getOption(ChannelOptions.autoRead)) != wanted {
            try? options.setOption(ChannelOptions.autoRead, value: wanted)
            if wanted { context.read() }
        }
        if wanted { parse() }
    }

    // MARK: Upstream events (from the current exchange only)

    fileprivate func upstreamEvent(_ exchange: UpstreamExchange, _ event: UpstreamExchange.Event) {
        guard upstream === exchange else { return }
        switch event {
        case .head(let head): perform(machine.upstreamHead(head, now: shared.storage.now()))
        case .body(let body): perform(machine.upstreamBody(body))
        case .readComplete: perform(machine.upstreamReadComplete())
        case .end: perform(machine.upstreamEnd(now: shared.storage.now()))
        case .failed(let error): perform(machine.upstreamFailed(error, now: shared.storage.now()))
        case .writabilityChanged(let writable): perform(machine.upstreamWritabilityChanged(writable))
        }
    }

    /// Flushes now, or at the end of the read batch when inside one.
    private func flushClient() {
        if inReadBatch {
            clientFlushPending = true
        } else {
            context.flush()
        }
    }

    // MARK: Channel events

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBatch = false
        if clientFlushPending {
            clientFlushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(machine.clientWritabilityChanged(context.channel.isWritable))
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        clientTimer.scheduled?.cancel()
        upstreamTimer.scheduled?.cancel()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ShutdownRequested {
            perform(machine.shutdown())
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        shared.logger.debug("client connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}

/// One timer slot of a connection: the deadline the state machine asked for (nil: none) and
/// the task scheduled on the event loop, which may be earlier (it re-schedules) or stale.
private struct LazyTimer {
    var id = 0
    var deadline: NIODeadline?
    var scheduled: Scheduled<Void>?
    var scheduledFor: NIODeadline?

    mutating func set(id: Int, deadline: NIODeadline) {
        self.id = id
        self.deadline = deadline
    }
}

/// One attempt to forward a request: the upstream connection's delegate while it lasts. Its
/// events reach the handler only while it is the handler's current exchange.
final class UpstreamExchange: UpstreamResponseDelegate {
    enum Event {
        case head(HTTPResponseHead)
        case body(ByteBuffer)
        case readComplete
        case end
        case failed(any Error)
        case writabilityChanged(Bool)
    }

    private weak var handler: ProxyHandler?
    var connection: UpstreamConnection?
    var waiter: UpstreamPool.WaiterID?

    init(handler: ProxyHandler) {
        self.handler = handler
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) { handler?.upstreamEvent(self, .head(head)) }
    func upstreamResponseBody(_ body: ByteBuffer) { handler?.upstreamEvent(self, .body(body)) }
    func upstreamReadComplete() { handler?.upstreamEvent(self, .readComplete) }
    func upstreamResponseEnd() { handler?.upstreamEvent(self, .end) }
    func upstreamFailed(_ error: Error) { handler?.upstreamEvent(self, .failed(error)) }
    func upstreamWritabilityChanged(isWritable: Bool) { handler?.upstreamEvent(self, .writabilityChanged(isWritable)) }
}

@available(*, unavailable)
extension UpstreamExchange: Sendable {}
