import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// What a background refresh needs: the request that found the entry stale, and its key.
struct RefreshJob: Sendable {
    let request: ProxyRequest
    let body: ByteBuffer
    let requestJSON: JSONValue?
    let key: CacheKey
    let route: Route
    /// The purge generation read with the lookup.
    let generation: Int64
    let clientAddress: String?
}

/// Replaces stale entries in the background (`stale_while_revalidate`): one fetch per key at a
/// time in this instance and, through the key's fetch lease in Redis, across instances; on the
/// loop of the request that found it stale, with that loop's upstream pool; the response is
/// stored exactly as a MISS's would be. No client waits for it.
/// At most ``maxInFlight`` run at once (more are skipped: the next stale hit asks again), and
/// ``shutdown(gracePeriod:)`` lets them finish, then cancels the rest.
final class BackgroundRefresher: Sendable {
    static let maxInFlight = 256

    private struct State {
        var inFlight: [String: UpstreamFetch.Cancel] = [:]
        var closed = false
    }

    private let state = NIOLockedValueBox(State())
    private let settings: ProxySettings
    private let storage: any CacheStorage
    private let leases: LeaseCoordinator
    private let warnings: RateLimitedLogger

    init(settings: ProxySettings, storage: any CacheStorage, leases: LeaseCoordinator, warnings: RateLimitedLogger) {
        self.settings = settings
        self.storage = storage
        self.leases = leases
        self.warnings = warnings
    }

    /// Number of refreshes in progress.
    var inFlightCount: Int { state.withLockedValue { $0.inFlight.count } }

    /// Starts a refresh of `job.key` unless one is running (or the refresher is shut down).
    /// Must be called on `pool.eventLoop`.
    func refresh(_ job: RefreshJob, pool: UpstreamPool) {
        let digest = job.key.digest
        let started = state.withLockedValue { state -> Bool in
            guard !state.closed, state.inFlight[digest] == nil, state.inFlight.count < Self.maxInFlight else { return false }
            state.inFlight[digest] = {}
            return true
        }
        guard started else { return }
        let fetch = UpstreamFetch(
            pool: pool, headTimeout: settings.upstreamTimeout, readTimeout: settings.upstreamReadTimeout,
            maxBodyBytes: job.route.maxBodyBytes)
        state.withLockedValue { state in
            if state.inFlight[digest] != nil { state.inFlight[digest] = fetch.cancel }
        }
        let framing: UpstreamFraming =
            job.body.readableBytes > 0 || job.request.framing != .none || job.request.announcesEmptyBody
            ? .length(job.body.readableBytes) : .none
        var head = job.request.upstreamHead(
            framing: framing, clientAddress: job.clientAddress, preserveHost: settings.preserveHost, upstreamHost: settings.upstreamHost)
        ProxyRequest.removeCacheFillHeaders(&head)
        let lookedUpAt = storage.now()
        let token = LeaseCoordinator.randomToken()
        let ttl = ProxyStateMachine.leaseTTL(job.route.coalesceTimeout > .zero ? job.route.coalesceTimeout : .seconds(5))
        // Another instance refreshing (or fetching) this key holds its lease: nothing to do.
        storage.acquireLease(job.key, token: token, ttl: ttl, on: pool.eventLoop).whenComplete { lease in
            if case .success(false) = lease {
                self.finish(digest)
                return
            }
            let held = (try? lease.get()) == true
            if held { self.leases.renew(job.key, token: token, ttl: ttl, on: pool.eventLoop) }
            // Refreshed between the stale lookup and the lease (another refresh just ended)?
            self.storage.peekFill(job.key, on: pool.eventLoop).whenComplete { peeked in
                switch peeked {
                case .success(.filled), .success(.uncacheable):
                    self.finish(digest)
                    if held { self.leases.release(job.key, token: token, on: pool.eventLoop) }
                    return
                default:
                    break
                }
                self.fetch(job, fetch, head: head, held: held, token: token, lookedUpAt: lookedUpAt, pool: pool)
            }
        }
    }

    private func fetch(
        _ job: RefreshJob, _ fetch: UpstreamFetch, head: HTTPRequestHead, held: Bool, token: String, lookedUpAt: Int64, pool: UpstreamPool
    ) {
        let digest = job.key.digest
        let release: @Sendable () -> Void = {
            if held { self.leases.release(job.key, token: token, on: pool.eventLoop) }
        }
        fetch.start(head: head, body: job.body).whenComplete { result in
            switch result {
            case .success(var response):
                self.store(job, &response, lookedUpAt: lookedUpAt, eventLoop: pool.eventLoop, then: release)
            case .failure(let error):
                self.finish(digest)
                release()
                self.warnings.warning(
                    "refresh-failed", "a background refresh failed; the stale entry stays until its window ends",
                    metadata: ["route": "\(job.route.name)", "error": "\(error)"])
            }
        }
    }

    private func store(
        _ job: RefreshJob, _ response: inout UpstreamFetch.Response, lookedUpAt: Int64, eventLoop: EventLoop,
        then release: @escaping @Sendable () -> Void
    ) {
        let digest = job.key.digest
        let originTags = EntryPlanner.takeOriginTags(&response.head, settings: settings.tags)
        if settings.policy.notStoredReason(requestMethod: job.request.method, response: response.head, route: job.route) != nil {
            finish(digest)
            release()
            return
        }
        let plan = EntryPlanner.plan(
            route: job.route, key: job.key, request: job.request, requestBody: job.body, requestJSON: job.requestJSON,
            generation: job.generation, lookedUpAt: lookedUpAt, head: response.head, body: response.body, originTags: originTags,
            now: storage.now())
        guard case .store(let request) = plan else {
            finish(digest)
            release()
            return
        }
        storage.store(request, on: eventLoop).whenComplete { result in
            self.finish(digest)
            release()
            if case .failure(let error) = result {
                self.warnings.warning("redis-store", "storing a refreshed response in Redis failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func finish(_ digest: String) {
        _ = state.withLockedValue { $0.inFlight.removeValue(forKey: digest) }
    }

    /// Refuses new refreshes, waits up to `gracePeriod` for those running, then cancels the rest.
    func shutdown(gracePeriod: TimeAmount) async {
        state.withLockedValue { $0.closed = true }
        let deadline = NIODeadline.now() + gracePeriod
        while NIODeadline.now() < deadline, inFlightCount > 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let remaining = state.withLockedValue { state in
            defer { state.inFlight.removeAll() }
            return Array(state.inFlight.values)
        }
        for cancel in remaining { cancel() }
    }
}

/// One request to the upstream that no client waits on: acquires a pooled connection, sends
/// the request, collects the response (bounded), with the proxy's head and read timeouts.
final class UpstreamFetch: UpstreamResponseDelegate, Sendable {
    typealias Cancel = @Sendable () -> Void

    struct Response: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
    }

    private struct State {
        var connection: UpstreamConnection?
        var waiter: UpstreamPool.WaiterID?
        var head: HTTPResponseHead?
        var body = ByteBuffer()
        var timer: Scheduled<Void>?
        var activity = false
        var done = false
        /// Made by ``start(head:body:)``: a fetch never started leaves no promise behind.
        var promise: EventLoopPromise<Response>?
    }

    private let pool: UpstreamPool
    private let headTimeout: TimeAmount
    private let readTimeout: TimeAmount
    private let maxBodyBytes: Int
    private let state: NIOLoopBoundBox<State>

    init(pool: UpstreamPool, headTimeout: TimeAmount, readTimeout: TimeAmount, maxBodyBytes: Int) {
        self.pool = pool
        self.headTimeout = headTimeout
        self.readTimeout = readTimeout
        self.maxBodyBytes = maxBodyBytes
        self.state = .makeBoxSendingValue(State(), eventLoop: pool.eventLoop)
    }

    /// Cancels the fetch from any thread: its connection is closed, its result a failure.
    var cancel: Cancel {
        { [self] in pool.eventLoop.execute { self.fail(UpstreamError(code: .closed, detail: "cancelled at shutdown")) } }
    }

    /// Sends the request; must be called on the pool's loop.
    func start(head: HTTPRequestHead, body: ByteBuffer) -> EventLoopFuture<Response> {
        let promise = pool.eventLoop.makePromise(of: Response.self)
        guard !state.value.done else {
            promise.fail(UpstreamError(code: .closed, detail: "cancelled at shutdown"))
            return promise.futureResult
        }
        state.value.promise = promise
        arm(headTimeout, code: .responseTimeout, "the upstream did not answer within the timeout")
        state.value.waiter = pool.acquire { result in
            self.state.value.waiter = nil
            switch result {
            case .success(let acquired):
                guard !self.state.value.done else {
                    self.pool.release(acquired.connection)
                    return
                }
                self.state.value.connection = acquired.connection
                acquired.connection.begin(self)
                acquired.connection.write(.head(head))
                if body.readableBytes > 0 { acquired.connection.write(.body(.byteBuffer(body))) }
                acquired.connection.write(.end(nil))
                acquired.connection.flush()
            case .failure(let error):
                self.fail(error)
            }
        }
        return promise.futureResult
    }

    private func arm(_ delay: TimeAmount, code: UpstreamError.Code, _ detail: String) {
        state.value.timer?.cancel()
        state.value.activity = false
        state.value.timer = pool.eventLoop.assumeIsolated().scheduleTask(in: delay) {
            if self.state.value.activity, self.state.value.head != nil {
                self.arm(self.readTimeout, code: .responseTimeout, "the upstream stalled mid-response")
            } else {
                self.fail(UpstreamError(code: code, detail: detail))
            }
        }
    }

    private func fail(_ error: Error) {
        guard !state.value.done else { return }
        state.value.done = true
        state.value.timer?.cancel()
        if let waiter = state.value.waiter { pool.cancel(waiter) }
        state.value.connection?.close()
        state.value.connection = nil
        state.value.promise?.fail(error)
    }

    func upstreamResponseHead(_ head: HTTPResponseHead) {
        state.value.head = head
        arm(readTimeout, code: .responseTimeout, "the upstream stalled mid-response")
    }

    func upstreamResponseBody(_ body: ByteBuffer) {
        state.value.activity = true
        if state.value.body.readableBytes + body.readableBytes > maxBodyBytes {
            fail(UpstreamError(code: .closed, detail: "the response is larger than max_body_bytes"))
            return
        }
        state.value.body.writeImmutableBuffer(body)
    }

    func upstreamReadComplete() {}

    func upstreamResponseEnd() {
        guard !state.value.done, let head = state.value.head else { return }
        state.value.done = true
        state.value.timer?.cancel()
        if let connection = state.value.connection { pool.release(connection) }
        state.value.connection = nil
        state.value.promise?.succeed(Response(head: head, body: state.value.body))
    }

    func upstreamFailed(_ error: Error) {
        state.value.connection = nil  // the connection reports its own end
        fail(error)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {}
}
