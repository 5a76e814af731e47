import Logging
import NIOCore
import NIOHTTP1

/// Serves one client connection, one request at a time: pipelined requests wait in a queue until
/// the one before them is answered, so responses go out in order. (NIO's
/// `HTTPServerPipelineHandler` would do the same but toggles read interest twice per request;
/// without it, all-HIT throughput measured 64.1k against 60.4k req/s, mean of 3 alternating
/// `wrk -t2 -c128` runs.)
///
/// For each request it asks ``CachePolicy`` what to do. Cacheable requests have their body read
/// (bounded by the route's `max_body_bytes`) to build the ``CacheKey``, and are answered from
/// Redis on a hit. Everything else, and misses, is forwarded through the event loop's
/// ``UpstreamPool``, streaming both ways with backpressure; storable miss responses are held
/// (bounded) and written to Redis after they are sent. Every response carries `X-Cache` and
/// `Cache-Status` describing the same ``CacheOutcome``.
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        /// Reading a cacheable request's body to build its key.
        case collecting(ClientRequest, Route, lookupMethod: String, body: ByteBuffer)
        /// Waiting for Redis; the number tells stale callbacks apart.
        case lookingUp(Int)
        case forwarding(ForwardedRequest)
        /// The response is complete but the request is not: drop its remaining body.
        case discarding
        case closed
    }

    private let shared: ProxyContext
    private var context: ChannelHandlerContext!
    private var pool: UpstreamPool!
    private var state = State.idle
    private var lookups = 0
    private var clientAddress: String?
    /// Set on shutdown: the response in progress is the last on this connection.
    private var closeAfterResponse = false
    /// Parts of pipelined requests that arrived while an earlier request was in progress.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedBytes = 0
    private static let maxQueuedParts = 64

    /// Request bodies up to this size are kept so the request can be re-sent when a pooled
    /// upstream connection turns out to be closed.
    private static let maxReplayBytes = 1 << 20
    /// Request body buffered while no upstream connection is ready, before reading pauses.
    private static let maxPendingBytes = 256 << 10

    init(shared: ProxyContext) {
        self.shared = shared
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.pool = shared.pool(for: context.eventLoop)
        self.clientAddress = context.channel.remoteAddress?.ipAddress
    }

    // MARK: Request parts

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !queued.isEmpty || (part.isHead && !isIdle) {
            // A pipelined request: it waits until the current one is answered.
            queued.append(part)
            if case .body(let body) = part { queuedBytes += body.readableBytes }
            if queuedBytes > Self.maxPendingBytes || queued.count > Self.maxQueuedParts { setClientReading(false) }
            return
        }
        handle(part)
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): requestHead(head)
        case .body(let body): requestBody(body)
        case .end: requestEnd()
        }
    }

    /// Hands queued (pipelined) request parts over, in order, while the handler can take them.
    private func drainQueue() {
        while let part = queued.first, !(part.isHead && !isIdle) {
            queued.removeFirst()
            if case .body(let body) = part { queuedBytes -= body.readableBytes }
            handle(part)
        }
        if queued.isEmpty || (queuedBytes <= Self.maxPendingBytes && queued.count <= Self.maxQueuedParts) {
            setClientReading(true)
        }
    }

    private var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    private func requestHead(_ head: HTTPRequestHead) {
        guard case .idle = state else { return }
        let request = ClientRequest(head: head)
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            // Answered here: the body is needed (for the key) or streamed (to the upstream) anyway.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        switch shared.policy.decide(head) {
        case .bypass(let reason):
            startForwarding(request, outcome: .bypass(reason), storeTarget: nil, body: nil, requestEnded: false)
        case .lookup(let route, let lookupMethod):
            state = .collecting(request, route, lookupMethod: lookupMethod, body: context.channel.allocator.buffer(capacity: 0))
        }
    }

    private func requestBody(_ part: ByteBuffer) {
        switch state {
        case .collecting(let request, let route, let lookupMethod, var body):
            state = .idle  // drop the reference so appending does not copy
            body.writeImmutableBuffer(part)
            if body.readableBytes > route.maxBodyBytes {
                startForwarding(request, outcome: .bypass(.requestTooLarge), storeTarget: nil, body: body, requestEnded: false)
            } else {
                state = .collecting(request, route, lookupMethod: lookupMethod, body: body)
            }
        case .forwarding(let forward):
            send(.body(.byteBuffer(part)), for: forward)
        case .idle, .lookingUp, .discarding, .closed:
            break
        }
    }

    private func requestEnd() {
        switch state {
        case .collecting(let request, let route, let lookupMethod, let body):
            let key = shared.policy.key(for: request.head, route: route, lookupMethod: lookupMethod, body: body)
            lookups += 1
            let lookup = lookups
            state = .lookingUp(lookup)
            shared.store.lookup(key, on: context.eventLoop).assumeIsolated().whenSuccess { result in
                guard case .lookingUp(lookup) = self.state else { return }
                self.lookupCompleted(result, request: request, route: route, key: key, body: body)
            }
        case .forwarding(let forward):
            forward.requestEnded = true
            send(.end(nil), for: forward)
        case .discarding:
            state = .idle
            setClientReading(true)
            drainQueue()
        case .idle, .lookingUp, .closed:
            break
        }
    }

    private func lookupCompleted(_ result: CacheStore.LookupResult, request: ClientRequest, route: Route, key: CacheKey, body: ByteBuffer) {
        switch result {
        case .hit(let entry):
            respondFromCache(request, entry: entry)
        case .miss where request.head.method == .HEAD:
            startForwarding(
                request, outcome: .miss(stored: false, notStoredReason: .headRequest), storeTarget: nil, body: body, requestEnded: true)
        case .miss:
            startForwarding(
                request, outcome: .miss(stored: false, notStoredReason: nil), storeTarget: (key, route), body: body, requestEnded: true)
        case .unavailable(let error):
            shared.warnings.warning(
                "redis-lookup", "Redis lookup failed; forwarding requests uncached until it answers",
                metadata: ["error": "\(error)", "redis": "\(shared.configuration.redis.url)"])
            startForwarding(request, outcome: .bypass(.redisUnavailable), storeTarget: nil, body: body, requestEnded: true)
        }
    }

    // MARK: Answering from the cache

    private func respondFromCache(_ request: ClientRequest, entry: CacheEntry) {
        let now = shared.store.now()
        let outcome = CacheOutcome.hit(ttl: entry.remainingTTL(now: now))
        let keepAlive = request.keepAlive && !closeAfterResponse
        // Stored headers never include these (see `store`), so they are added, not replaced.
        var headers = HTTPHeaders(entry.headers)
        headers.add(name: "content-length", value: String(entry.body.readableBytes))
        headers.add(name: "age", value: String(entry.age(now: now)))
        headers.add(name: "x-cache", value: outcome.xCache)
        headers.add(name: "cache-status", value: outcome.cacheStatus)
        Self.addConnectionHeader(&headers, keepAlive: keepAlive, version: request.head.version)
        let status = HTTPResponseStatus(statusCode: entry.status)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: request.head.version, status: status, headers: headers))), promise: nil)
        if request.head.method != .HEAD, entry.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(entry.body))), promise: nil)
        }
        finishResponse(request, status: status, outcome: outcome, keepAlive: keepAlive, requestEnded: true)
    }

    // MARK: Forwarding

    private func startForwarding(
        _ request: ClientRequest, outcome: CacheOutcome, storeTarget: (key: CacheKey, route: Route)?, body: ByteBuffer?, requestEnded: Bool
    ) {
        let head = upstreamHead(for: request.head, fullBody: requestEnded ? (body ?? ByteBuffer()) : nil)
        let forward = ForwardedRequest(handler: self, request: request, outcome: outcome, storeTarget: storeTarget)
        forward.keepAlive = forward.keepAlive && !closeAfterResponse
        state = .forwarding(forward)
        forward.pending.append(.head(head))
        if let body, body.readableBytes > 0 {
            forward.pending.append(.body(.byteBuffer(body)))
            forward.pendingBytes = body.readableBytes
        }
        if requestEnded {
            forward.requestEnded = true
            forward.pending.append(.end(nil))
        }
        forward.replay = forward.pendingBytes <= Self.maxReplayBytes ? forward.pending : nil
        forward.replayBytes = forward.pendingBytes
        let timeout = shared.configuration.upstreamTimeout
        forward.timeout = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.upstreamTimedOut(forward)
        }
        if forward.pendingBytes > Self.maxPendingBytes { setClientReading(false) }
        connect(forward)
    }

    /// The request head as sent upstream: hop-by-hop headers removed, `X-Forwarded-*` added,
    /// `Host` kept or replaced, framing set for the body we will send.
    private func upstreamHead(for clientHead: HTTPRequestHead, fullBody: ByteBuffer?) -> HTTPRequestHead {
        var head = clientHead
        let chunked = head.headers.isChunked
        head.version = .http1_1
        head.headers.removeHopByHop()
        head.headers.remove(name: "expect")
        if let clientAddress {
            head.headers.appendToList(name: "x-forwarded-for", value: clientAddress)
        }
        head.headers.replaceOrAdd(name: "x-forwarded-proto", value: "http")
        if let host = clientHead.headers.first(name: "host") {
            head.headers.replaceOrAdd(name: "x-forwarded-host", value: host)
        }
        if !shared.configuration.preserveHost || !head.headers.contains(name: "host") {
            head.headers.replaceOrAdd(name: "host", value: shared.configuration.upstream.hostHeader)
        }
        if let fullBody {
            let hadLength = head.headers.contains(name: "content-length")
            head.headers.remove(name: "content-length")
            if fullBody.readableBytes > 0 || hadLength || chunked || [.POST, .PUT, .PATCH].contains(clientHead.method) {
                head.headers.add(name: "content-length", value: String(fullBody.readableBytes))
            }
        } else if chunked && !head.headers.contains(name: "content-length") {
            head.headers.add(name: "transfer-encoding", value: "chunked")
        }
        return head
    }

    private func connect(_ forward: ForwardedRequest) {
        pool.acquire { result in
            guard self.isCurrent(forward) else {
                if case .success(let acquired) = result { self.pool.release(acquired.connection) }
                return
            }
            switch result {
            case .success(let acquired):
                forward.connection = acquired.connection
                forward.reused = acquired.reused
                acquired.connection.begin(forward)
                for part in forward.pending { acquired.connection.write(part) }
                forward.pending = []
                forward.pendingBytes = 0
                acquired.connection.flush()
                self.setClientReading(acquired.connection.channel.isWritable)
            case .failure(let error):
                forward.timeout?.cancel()
                let status: HTTPResponseStatus = error.code == .connectTimeout ? .gatewayTimeout : .badGateway
                self.respondWithError(forward, status: status, message: error.detail)
            }
        }
    }

    private func send(_ part: HTTPClientRequestPart, for forward: ForwardedRequest) {
        if forward.replay != nil {
            if case .body(.byteBuffer(let body)) = part { forward.replayBytes += body.readableBytes }
            if forward.replayBytes > Self.maxReplayBytes {
                forward.replay = nil
            } else {
                forward.replay!.append(part)
            }
        }
        if let connection = forward.connection {
            connection.write(part)
            connection.flush()
            if !connection.channel.isWritable { setClientReading(false) }
        } else {
            forward.pending.append(part)
            if case .body(.byteBuffer(let body)) = part { forward.pendingBytes += body.readableBytes }
            if forward.pendingBytes > Self.maxPendingBytes { setClientReading(false) }
        }
    }

    private func isCurrent(_ forward: ForwardedRequest) -> Bool {
        if case .forwarding(let current) = state, current === forward { return true }
        return false
    }

    // MARK: Upstream response (called by ForwardedRequest)

    fileprivate func upstreamResponseHead(_ forward: ForwardedRequest, _ head: HTTPResponseHead) {
        guard isCurrent(forward) else { return }
        forward.timeout?.cancel()
        forward.timeout = nil
        if let target = forward.storeTarget {
            if let reason = shared.policy.notStoredReason(
                requestMethod: forward.request.head.method.rawValue, response: head, route: target.route)
            {
                forward.outcome = .miss(stored: false, notStoredReason: reason)
                writeResponseHead(forward, head, contentLength: nil)
                forward.response = .streaming
            } else {
                let expected = head.headers.first(name: "content-length").flatMap(Int.init) ?? 0
                forward.response = .buffering(head, context.channel.allocator.buffer(capacity: expected))
            }
        } else {
            writeResponseHead(forward, head, contentLength: nil)
            forward.response = .streaming
        }
    }

    fileprivate func upstreamResponseBody(_ forward: ForwardedRequest, _ part: ByteBuffer) {
        guard isCurrent(forward) else { return }
        switch forward.response {
        case .buffering(let head, var body):
            forward.response = .waiting  // drop the reference so appending does not copy
            body.writeImmutableBuffer(part)
            if let target = forward.storeTarget, body.readableBytes > target.route.maxBodyBytes {
                forward.outcome = .miss(stored: false, notStoredReason: .tooLarge)
                writeResponseHead(forward, head, contentLength: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                forward.response = .streaming
            } else {
                forward.response = .buffering(head, body)
            }
        case .streaming:
            if forward.request.head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
            }
        case .waiting:
            break
        }
    }

    fileprivate func upstreamReadComplete(_ forward: ForwardedRequest) {
        guard isCurrent(forward) else { return }
        context.flush()
        if !context.channel.isWritable { forward.connection?.setReading(false) }
    }

    fileprivate func upstreamResponseEnd(_ forward: ForwardedRequest) {
        guard isCurrent(forward) else { return }
        if let connection = forward.connection {
            forward.connection = nil
            connection.setReading(true)
            if forward.requestEnded { pool.release(connection) } else { connection.close() }
        }
        guard case .buffering(let head, let body) = forward.response, let target = forward.storeTarget else {
            finishResponse(
                forward.request, status: forward.responseStatus ?? .ok, outcome: forward.outcome, keepAlive: forward.keepAlive,
                requestEnded: forward.requestEnded)
            return
        }
        // The response is sent once Redis has the entry (or failed to take it), so that a client
        // that saw this MISS finds the entry on its next request, on any connection.
        store(head: head, body: body, key: target.key, route: target.route).assumeIsolated().whenComplete { result in
            guard self.isCurrent(forward) else { return }
            switch result {
            case .success: forward.outcome = .miss(stored: true, notStoredReason: nil)
            case .failure: forward.outcome = .miss(stored: false, notStoredReason: .storeFailed)
            }
            self.writeResponseHead(forward, head, contentLength: body.readableBytes)
            if forward.request.head.method != .HEAD, body.readableBytes > 0 {
                self.context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            self.finishResponse(
                forward.request, status: head.status, outcome: forward.outcome, keepAlive: forward.keepAlive,
                requestEnded: forward.requestEnded)
        }
    }

    fileprivate func upstreamFailed(_ forward: ForwardedRequest, _ error: Error) {
        guard isCurrent(forward) else { return }
        let connection = forward.connection
        forward.connection = nil
        connection?.close()
        switch forward.response {
        case .waiting:
            // A pooled connection the upstream had closed: send the request again on another.
            if forward.reused, forward.retries < 3, let replay = forward.replay {
                forward.retries += 1
                forward.pending = replay
                shared.logger.debug("retrying on a new upstream connection", metadata: ["error": "\(error)"])
                connect(forward)
                return
            }
            forward.timeout?.cancel()
            respondWithError(forward, status: .badGateway, message: "the upstream closed the connection without answering: \(error)")
        case .buffering:
            respondWithError(forward, status: .badGateway, message: "the upstream closed the connection mid-response: \(error)")
        case .streaming:
            // The client already has the head: the only honest signal left is to cut the connection.
            shared.logger.debug("upstream failed mid-response; closing the client connection", metadata: ["error": "\(error)"])
            state = .closed
            context.close(promise: nil)
        }
    }

    fileprivate func upstreamWritabilityChanged(_ forward: ForwardedRequest, isWritable: Bool) {
        guard isCurrent(forward) else { return }
        setClientReading(isWritable)
    }

    private func upstreamTimedOut(_ forward: ForwardedRequest) {
        guard isCurrent(forward), case .waiting = forward.response else { return }
        forward.connection?.close()
        forward.connection = nil
        respondWithError(
            forward, status: .gatewayTimeout,
            message: "the upstream did not answer within \(Self.describe(shared.configuration.upstreamTimeout))")
    }

    // MARK: Writing responses

    private func writeResponseHead(_ forward: ForwardedRequest, _ upstream: HTTPResponseHead, contentLength: Int?) {
        var headers = upstream.headers
        headers.removeHopByHop()
        headers.remove(name: "x-cache")
        if let contentLength {
            headers.replaceOrAdd(name: "content-length", value: String(contentLength))
        } else if !headers.contains(name: "content-length") && Self.hasBody(upstream.status, method: forward.request.head.method) {
            if forward.request.head.version.minor >= 1 {
                headers.add(name: "transfer-encoding", value: "chunked")
            } else {
                forward.keepAlive = false  // an HTTP/1.0 client learns where the body ends by the close
            }
        }
        addProxyHeaders(&headers, outcome: forward.outcome, request: forward.request, keepAlive: forward.keepAlive)
        forward.responseStatus = upstream.status
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: forward.request.head.version, status: upstream.status, headers: headers))),
            promise: nil)
    }

    /// `X-Cache`, `Cache-Status` (appended to an upstream cache's list) and `Connection`.
    /// `headers` has no `Connection` header: it is hop-by-hop and was removed.
    private func addProxyHeaders(_ headers: inout HTTPHeaders, outcome: CacheOutcome, request: ClientRequest, keepAlive: Bool) {
        headers.replaceOrAdd(name: "x-cache", value: outcome.xCache)
        headers.appendToList(name: "cache-status", value: outcome.cacheStatus)
        Self.addConnectionHeader(&headers, keepAlive: keepAlive, version: request.head.version)
    }

    /// `Connection: close` when the connection ends after this response; `keep-alive` for an
    /// HTTP/1.0 client that asked to keep it; nothing otherwise.
    private static func addConnectionHeader(_ headers: inout HTTPHeaders, keepAlive: Bool, version: HTTPVersion) {
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
    }

    private func respondWithError(_ forward: ForwardedRequest, status: HTTPResponseStatus, message: String) {
        shared.warnings.warning(
            "upstream-\(status.code)", "upstream error; answering \(status.code)",
            metadata: ["error": "\(message)", "upstream": "\(shared.configuration.upstream)"])
        let json = "{\"error\": \(Self.jsonString(message)), \"upstream\": \(Self.jsonString(shared.configuration.upstream.description))}\n"
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(json.utf8.count))])
        let keepAlive = forward.keepAlive
        addProxyHeaders(&headers, outcome: forward.outcome, request: forward.request, keepAlive: keepAlive)
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: forward.request.head.version, status: status, headers: headers))), promise: nil)
        if forward.request.head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: json)))), promise: nil)
        }
        finishResponse(forward.request, status: status, outcome: forward.outcome, keepAlive: keepAlive, requestEnded: forward.requestEnded)
    }

    private func finishResponse(
        _ request: ClientRequest, status: HTTPResponseStatus, outcome: CacheOutcome, keepAlive: Bool, requestEnded: Bool
    ) {
        shared.logger.debug(
            "request",
            metadata: [
                "method": "\(request.head.method.rawValue)", "uri": "\(request.head.uri)", "status": "\(status.code)",
                "cache": "\(outcome.cacheStatus)",
            ])
        if keepAlive {
            state = requestEnded ? .idle : .discarding
            setClientReading(true)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            drainQueue()
        } else {
            state = .closed
            let context = self.context!
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Writes the entry to Redis; the future fails (after a rate-limited warning) on Redis trouble.
    private func store(head: HTTPResponseHead, body: ByteBuffer, key: CacheKey, route: Route) -> EventLoopFuture<Void> {
        var headers = head.headers
        headers.removeHopByHop()
        for name in HTTPHeaders.perResponse { headers.remove(name: name) }
        headers.remove(name: "content-length")
        let entry = CacheEntry(
            status: Int(head.status.code), headers: headers.map { ($0.name, $0.value) }, body: body,
            storedAt: shared.store.now(), ttl: route.ttl.nanoseconds / 1_000_000)
        let warnings = shared.warnings
        let redisURL = shared.configuration.redis.url
        return shared.store.store(entry, under: key, on: context.eventLoop).map { _ in }.flatMapErrorThrowing { error in
            warnings.warning("redis-store", "storing a response in Redis failed", metadata: ["error": "\(error)", "redis": "\(redisURL)"])
            throw error
        }
    }

    // MARK: Channel events

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .forwarding(let forward) = state {
            forward.connection?.setReading(context.channel.isWritable)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .forwarding(let forward) = state {
            forward.timeout?.cancel()
            forward.connection?.close()
            forward.connection = nil
        }
        state = .closed
        context.fireChannelInactive()
    }

    /// Sent by ``ProxyServer/shutdown(gracePeriod:)``: close when idle, or after the current response.
    struct ShutdownRequested {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            // A keep-alive connection with nothing in progress and no traffic: close it. One
            // with a request in progress (a slow upstream, a long download) is left alone.
            if case .idle = state, queued.isEmpty {
                state = .closed
                context.close(promise: nil)
            }
            return
        }
        guard event is ShutdownRequested else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch state {
        case .idle, .discarding:
            state = .closed
            context.close(promise: nil)
        case .forwarding(let forward):
            forward.keepAlive = false
            closeAfterResponse = true
        case .collecting, .lookingUp:
            closeAfterResponse = true
        case .closed:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        shared.logger.debug("client connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func setClientReading(_ reading: Bool) {
        guard let options = context.channel.syncOptions else { return }
        if (try? options.getOption(ChannelOptions.autoRead)) != reading {
            try? options.setOption(ChannelOptions.autoRead, value: reading)
            if reading { context.read() }
        }
    }

    // MARK: Helpers

    private static func hasBody(_ status: HTTPResponseStatus, method: HTTPMethod) -> Bool {
        !(method == .HEAD || status.code < 200 || status == .noContent || status == .notModified)
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func describe(_ amount: TimeAmount) -> String {
        let ms = amount.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}

/// A client request as the handler keeps it.
struct ClientRequest {
    let head: HTTPRequestHead
    /// Whether the client wants the connection kept open after the response.
    var keepAlive: Bool { head.isKeepAlive }
}

/// One request being forwarded: what is still to be sent, what has come back, and what the
/// cache will do with it. The upstream connection's delegate while the exchange lasts.
final class ForwardedRequest: UpstreamResponseDelegate {
    enum Response {
        case waiting
        /// A storable miss: held until complete (bounded by the route's `max_body_bytes`).
        case buffering(HTTPResponseHead, ByteBuffer)
        case streaming
    }

    let handler: ProxyHandler
    let request: ClientRequest
    var outcome: CacheOutcome
    let storeTarget: (key: CacheKey, route: Route)?
    var keepAlive: Bool
    var connection: UpstreamConnection?
    var reused = false
    var retries = 0
    var pending: [HTTPClientRequestPart] = []
    var pendingBytes = 0
    /// Everything sent so far, while small enough to send again; nil once too large.
    var replay: [HTTPClientRequestPart]?
    var replayBytes = 0
    var requestEnded = false
    var response = Response.waiting
    var responseStatus: HTTPResponseStatus?
    var timeout: Scheduled<Void>?

    init(handler: ProxyHandler, request: ClientRequest, outcome: CacheOutcome, storeTarget: (key: CacheKey, route: Route)?) {
        self.handler = handler
        self.request = request
        self.outcome = outcome
        self.storeTarget = storeTarget
        self.keepAlive = request.keepAlive
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) { handler.upstreamResponseHead(self, head) }
    func upstreamResponseBody(_ body: ByteBuffer) { handler.upstreamResponseBody(self, body) }
    func upstreamReadComplete() { handler.upstreamReadComplete(self) }
    func upstreamResponseEnd() { handler.upstreamResponseEnd(self) }
    func upstreamFailed(_ error: Error) { handler.upstreamFailed(self, error) }
    func upstreamWritabilityChanged(isWritable: Bool) { handler.upstreamWritabilityChanged(self, isWritable: isWritable) }
}

extension HTTPServerRequestPart {
    fileprivate var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
