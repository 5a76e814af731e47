import NIOCore
import NIOHTTP1

/// Every decision about one client connection, as a pure state machine: each event is a
/// `mutating func` that returns the actions to perform, and ``ProxyHandler`` performs them. It
/// does no I/O and reads no clock (events that need the time carry `now`), so tests drive it
/// directly.
///
/// One request is answered at a time. Its ``Exchange`` has two sides:
///
/// ```
/// request side:   collecting (body for the key) ─┬─▶ ended
///                 streaming (body to upstream) ──┘     discarding (answered first; rest dropped)
///
/// response side:  awaitingBody ──▶ lookingUp ──▶ HIT: written at once ─────────────────────┐
///                       │               └──▶ forwarding ──▶ buffering ──▶ storing ──▶ sent ◀┤
///                       └─ bypass ────────────▶ forwarding ──▶ streaming ──────────▶ sent ◀┘
/// ```
///
/// Requests that arrive behind it (pipelining) wait in a bounded queue; reading from the client
/// pauses when the queue is full, when the upstream cannot take more of a request body, and
/// while the client is not reading its responses. A request the parser or normalizer refuses is
/// answered in its turn with its 4xx/5xx and the connection is closed.
struct ProxyStateMachine {
    /// Which timer an action or event concerns; each connection has at most one of each.
    enum TimerSlot: Hashable, Sendable {
        /// Header timeout, keep-alive timeout or body idle timeout.
        case client
        /// Response-head timeout or upstream read (idle) timeout.
        case upstream
    }

    /// Arrays earlier events' actions came in, emptied and given back by the handler
    /// (``recycle(_:)``): each event otherwise allocated and grew a new one (six per hit). Events
    /// nest (a memory hit is answered while the request's actions are being performed), so a few.
    private var spareActions: [[Action]] = []

    /// An empty array for an event's actions, with the capacity of a recycled one.
    private mutating func takeActionBuffer() -> [Action] {
        spareActions.popLast() ?? []
    }

    /// Takes back an event's actions once performed, to reuse their storage.
    mutating func recycle(_ actions: consuming [Action]) {
        var actions = actions
        guard actions.capacity > 0, actions.capacity <= 64, spareActions.count < 4 else { return }
        actions.removeAll(keepingCapacity: true)
        spareActions.append(actions)
    }

    /// What ``ProxyHandler`` must do. Cases with large payloads are `indirect`: every action of
    /// a hit moves through arrays of this enum, whose size is that of its largest case.
    enum Action {
        // Client connection.
        case sendContinue(HTTPVersion)
        case writeHead(HTTPResponseHead)
        /// A head already serialized (a hit: the stored header block and a few lines).
        case writeEncodedHead(ByteBuffer)
        case writeBody(ByteBuffer)
        /// Writes the end of the response and flushes; with `close`, closes once it is written.
        case writeEnd(close: Bool)
        case flush
        case setClientReading(Bool)
        /// Closes the client connection at once (a response cut short, a timeout).
        case closeClient
        // Timers.
        case setTimer(TimerSlot, id: Int, after: TimeAmount)
        case cancelTimer(TimerSlot)
        // Cache.
        /// Looks the key up; answer with ``lookupCompleted(request:_:now:)``.
        case lookup(CacheKey, request: Int)
        /// Stores the entry; answer with ``storeCompleted(request:_:)``.
        indirect case store(StoreRequest, request: Int)
        /// Purges; answer with ``purgeCompleted(request:_:)``.
        indirect case purge(PurgeSelector, soft: Bool, request: Int)
        /// Fetches and stores a fresh copy in the background (no answer: it concerns no client).
        indirect case refresh(RefreshJob)
        /// Joins the instance's fetch of a key (``Coalescer/join(_:eventLoop:now:deliver:)``);
        /// answer at once with ``fetchJoined(request:_:)``, deliveries with ``fetchDelivered(request:_:now:)``.
        case joinFetch(digest: String, request: Int)
        /// The leader's fetch ended.
        indirect case completeFetch(Coalescer.Ticket, Coalescer.Outcome)
        /// A waiter stops waiting.
        case leaveFetch(Coalescer.WaiterID)
        /// Takes the key's fetch lease across instances, or waits for another instance's fill;
        /// answer with ``leaseResolved(request:key:_:now:)``.
        /// With `takenIsEnough`, a lease held elsewhere is answered at once (a stale entry is served).
        indirect case lease(CacheKey, ttl: TimeAmount, waitLimit: TimeAmount, takenIsEnough: Bool, request: Int)
        /// Stops renewing the lease and, unless the store already did (`inRedis` false), gives it
        /// back in Redis (announcing the fill).
        indirect case releaseLease(CacheKey, token: String, inRedis: Bool, uncacheable: Bool = false)
        // Upstream.
        /// Gets a connection from the pool; answer with ``upstreamAcquired(reused:)`` or
        /// ``upstreamAcquireFailed(_:)``.
        case acquireUpstream
        /// Writes (and flushes) parts of the request on the current upstream connection.
        case writeUpstream([HTTPClientRequestPart])
        case setUpstreamReading(Bool)
        /// The exchange is complete: the connection goes back to the pool.
        case releaseUpstream
        /// The current upstream connection (or the one being acquired) is not reused.
        case closeUpstream
        // Reporting.
        indirect case log(RequestLog)
        indirect case warn(ProxyWarning)
    }

    /// What happened to one request: the log line.
    struct RequestLog: Sendable, Hashable {
        var method: String
        var target: String
        var status: Int
        var outcome: CacheOutcome
        var route: String?
        /// What went wrong, for errors and refusals (the client may get less; the log gets this).
        var detail: String? = nil
        /// Entries an invalidation rule purged before the response was sent.
        var purged: Int? = nil
    }

    /// Trouble worth a (rate-limited) warning in the log.
    enum ProxyWarning {
        case redisLookupFailed(any Error)
        case corruptEntry(String)
        case redisStoreFailed(any Error)
        /// An invalidation rule's purge failed: entries it should have removed may be served.
        case purgeFailed(any Error, rule: String)
        /// A write's body was larger than its rule reads: its `{body.…}` tags were not purged.
        case invalidationBodyTooLarge(rule: String)
        case upstreamError(status: Int, detail: String)
        case requestRejected(RequestRejection)
    }

    // MARK: State

    /// One request from its head to the end of its response.
    struct Exchange {
        let id: Int
        let request: ProxyRequest
        var keepAlive: Bool
        var outcome: CacheOutcome
        var route: Route?
        var requestSide: RequestSide
        var responseSide: ResponseSide
        var upstream: UpstreamSide = .none
        /// Everything sent upstream so far while it is small enough to send again; nil once not.
        var replay: [HTTPClientRequestPart]? = []
        var replayBytes = 0
        var retries = 0
        var upstreamWritable = true
        var status: Int?
        var errorDetail: String?
        /// The invalidation rule of a write, and its body as far as the rule reads it.
        var invalidation: InvalidationCapture?
        /// Tags from the origin's tag header (which is removed from the response).
        var originTags: [String] = []
        var purged: Int?
        /// Set while this request leads the instance's fetch of its key.
        var leaderTicket: Coalescer.Ticket?
        /// The cross-instance lease this request holds while it fetches.
        var lease: (key: CacheKey, token: String)?
    }

    struct InvalidationCapture {
        let rule: InvalidationRule
        /// The request body so far; nil when the rule does not read it, or it grew past the rule's limit.
        var body: ByteBuffer?
        var bodyTooLarge = false
    }

    enum RequestSide {
        /// A cacheable request's body, read to build the key.
        case collecting(ByteBuffer)
        /// The body goes upstream as it arrives.
        case streaming
        case ended
        /// The response was finished before the request: its remaining body is dropped.
        case discarding
    }

    enum ResponseSide {
        /// Waiting for the end of the request body before the lookup.
        case awaitingBody(Route, lookupMethod: String)
        /// The request ended; its body is kept for forwarding on a miss.
        case lookingUp(CacheKey, Route, body: ByteBuffer, json: JSONValue?)
        /// Asking the coalescer whether another request already fetches this key.
        case joining(body: ByteBuffer, StoreTarget)
        /// Waiting for the request that fetches this key (bounded by the route's `coalesce_timeout`).
        case waitingForLeader(body: ByteBuffer, StoreTarget, Coalescer.WaiterID)
        /// Leading the key's fetch in this instance: taking the lease across instances, or
        /// waiting for another instance's fill.
        case leasing(body: ByteBuffer, StoreTarget)
        /// Sent upstream, no response head yet; `store` says where a storable answer goes.
        case forwarding(store: StoreTarget?)
        /// A storable response held until it is complete (bounded by the route's `max_body_bytes`).
        case buffering(HTTPResponseHead, ByteBuffer, StoreTarget)
        /// Waiting for Redis to take the entry before answering.
        case storing(HTTPResponseHead, ByteBuffer, CacheEntry)
        /// The head went to the client; the body follows as it arrives.
        case streaming
        /// A write's response held until its invalidation rule's purge is done (upstream reading
        /// paused); `ended` once the upstream finished.
        case invalidating(HTTPResponseHead, ByteBuffer, ended: Bool)
        /// A `PURGE` request waiting for the storage.
        case purging
        /// The whole response was written.
        case sent
    }

    struct StoreTarget {
        let key: CacheKey
        let route: Route
        let requestBody: ByteBuffer
        let requestJSON: JSONValue?
        /// From the lookup; the store is refused if a purge came after it.
        let generation: Int64
        /// When the lookup answered (ms): a fetch longer than the purge records' life is not stored.
        let lookedUpAt: Int64
        /// An entry past its TTL but inside `stale_if_error`: served if the origin fails.
        let staleEntry: CacheEntry?
    }

    enum UpstreamSide {
        case none
        /// Waiting for a pool connection; the parts to write once it comes.
        case acquiring(pending: [HTTPClientRequestPart], pendingBytes: Int)
        case connected(reused: Bool)
        case done
    }

    /// A parsed part of a request waiting behind the current one.
    enum QueuedPart {
        case head(HTTPRequestParser.Head)
        case body(ByteBuffer)
        case end
        case failed(RequestRejection)
    }

    private enum ClientTimerKind {
        /// A request head has started (or the connection is new) and must complete.
        case header
        /// Nothing in progress: an idle keep-alive connection.
        case keepAlive
        /// A request body is being read: it must not stall.
        case body
        /// The client is not reading what it was sent: it must not stall either.
        case send
    }
    private enum UpstreamTimerKind { case head, read, coalesce }

    private enum Connection {
        case open
        /// The last response is written or being written; nothing more is read or answered.
        case closing
        case closed
    }

    let settings: ProxySettings
    let clientAddress: String?
    private var connection = Connection.open
    private var exchange: Exchange?
    private var nextExchangeID = 0
    private var queue = CircularBuffer<QueuedPart>()
    private var queuedRequests = 0
    private var queuedBytes = 0
    /// The parser failed: nothing more will be read.
    private var inputFailed = false
    private var clientWritable = true
    private var reading = true
    private var shutdownRequested = false
    /// The parser holds part of a head that has not completed.
    private var partialHead = false
    private var clientTimer: (kind: ClientTimerKind, id: Int, activity: Bool)?
    private var upstreamTimer: (kind: UpstreamTimerKind, id: Int, activity: Bool)?
    private var timerIDs = 0

    init(settings: ProxySettings, clientAddress: String?) {
        self.settings = settings
        self.clientAddress = clientAddress
    }

    /// Whether a request is in progress (for tests and the shell's idle check).
    var isIdle: Bool { exchange == nil && queue.isEmpty && connection == .open }

    // MARK: Connection events

    /// The connection is open; the first request head must start within the header timeout.
    mutating func connectionStarted() -> [Action] {
        var actions = takeActionBuffer()
        armClientTimer(.header, after: settings.client.headerTimeout, &actions)
        return actions
    }

    /// Bytes of a request head arrived but not all of it (the parser waits for more).
    mutating func partialHeadReceived() -> [Action] {
        // Behind a request in progress it waits: the header timer starts once that is answered.
        partialHead = true
        guard connection == .open, exchange == nil, queue.isEmpty else { return [] }
        var actions = takeActionBuffer()
        if clientTimer?.kind != .header { armClientTimer(.header, after: settings.client.headerTimeout, &actions) }
        return actions
    }

    mutating func clientWritabilityChanged(_ writable: Bool) -> [Action] {
        guard connection == .open, writable != clientWritable else { return [] }
        clientWritable = writable
        var actions = takeActionBuffer()
        if case .streaming = exchange?.responseSide, case .connected = exchange?.upstream {
            actions.append(.setUpstreamReading(writable))
        }
        if !writable {
            // A client that stops reading may not hold the connection (and an upstream one) forever.
            armClientTimer(.send, after: settings.client.bodyTimeout, &actions)
        } else if clientTimer?.kind == .send {
            switch exchange?.requestSide {
            case .collecting, .streaming, .discarding: armClientTimer(.body, after: settings.client.bodyTimeout, &actions)
            case .ended: cancelClientTimer(&actions)
            case nil: armClientTimer(.keepAlive, after: settings.client.keepAliveTimeout, &actions)
            }
        }
        if writable, exchange == nil {
            startNextRequest(&actions)
        }
        updateReading(&actions)
        return actions
    }

    /// The client connection closed (or failed).
    mutating func clientClosed() -> [Action] {
        var actions = takeActionBuffer()
        leaveCoalescing(&actions)
        if let exchange, Self.hasUpstream(exchange.upstream) {
            actions.append(.closeUpstream)
        }
        if clientTimer != nil { actions.append(.cancelTimer(.client)) }
        if upstreamTimer != nil { actions.append(.cancelTimer(.upstream)) }
        clientTimer = nil
        upstreamTimer = nil
        exchange = nil
        queue.removeAll()
        connection = .closed
        return actions
    }

    /// The server is shutting down: close when idle, else after the current response.
    mutating func shutdown() -> [Action] {
        shutdownRequested = true
        guard connection == .open else { return [] }
        if exchange == nil {
            connection = .closing
            return cancelTimers() + [.closeClient]
        }
        exchange!.keepAlive = false
        return []
    }

    // MARK: Request parts (from the parser)

    mutating func requestHead(_ head: HTTPRequestParser.Head) -> [Action] {
        guard connection == .open else { return [] }
        partialHead = false
        if exchange != nil || !queue.isEmpty || !clientWritable {
            enqueue(.head(head))
            var actions = takeActionBuffer()
            updateReading(&actions)
            return actions
        }
        var actions = takeActionBuffer()
        begin(head, &actions)
        updateReading(&actions)
        return actions
    }

    mutating func requestBody(_ part: ByteBuffer) -> [Action] {
        guard connection == .open else { return [] }
        if !queue.isEmpty || exchange == nil {
            enqueue(.body(part))
            var actions = takeActionBuffer()
            updateReading(&actions)
            return actions
        }
        var actions = takeActionBuffer()
        body(part, &actions)
        updateReading(&actions)
        return actions
    }

    mutating func requestEnd() -> [Action] {
        guard connection == .open else { return [] }
        if !queue.isEmpty || exchange == nil {
            enqueue(.end)
            return []
        }
        var actions = takeActionBuffer()
        end(&actions)
        updateReading(&actions)
        return actions
    }

    /// The parser refused the bytes that follow: answered in turn, then the connection closes.
    mutating func requestFailed(_ rejection: RequestRejection) -> [Action] {
        guard connection == .open else { return [] }
        inputFailed = true
        var actions = takeActionBuffer()
        if let exchange, queue.isEmpty {
            switch exchange.requestSide {
            case .collecting, .streaming:
                // The current request's own body is malformed.
                abortExchange(rejection: rejection, &actions)
                return actions
            case .discarding:
                // Answered already; the rest of its body is malformed.
                actions.append(.warn(.requestRejected(rejection)))
                closeNow(&actions)
                return actions
            case .ended:
                break
            }
        }
        if exchange != nil || !queue.isEmpty {
            enqueue(.failed(rejection))
        } else {
            reject(rejection, version: .http1_1, &actions)
        }
        updateReading(&actions)
        return actions
    }

    // MARK: Cache events

    /// - Parameters:
    ///   - generation: the purge generation read with the lookup (``CacheRead``).
    ///   - fromMemory: the answer came from the memory tier (``CacheStorage/memoryLookup(_:now:)``).
    mutating func lookupCompleted(
        request id: Int, _ lookup: CacheLookup, generation: Int64 = 0, now: Int64, fromMemory: Bool = false
    ) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id,
            case .lookingUp(let key, let route, let body, let json) = exchange.responseSide
        else {
            return []
        }
        var actions = takeActionBuffer()
        var staleEntry: CacheEntry?
        switch lookup {
        case .fresh(let entry):
            respondFromCache(entry, outcome: .hit(ttl: entry.remainingTTL(now: now), fromMemory: fromMemory), now: now, &actions)
            return actions
        case .stale(let entry, let pastTTL):
            let stale = route.stale
            if stale.whileRevalidate > .zero, pastTTL <= stale.whileRevalidate.nanoseconds / 1_000_000 {
                // A HEAD's refresh could not be stored: the next GET refreshes.
                if !exchange.request.isHead {
                    actions.append(
                        .refresh(
                            RefreshJob(
                                request: exchange.request, body: body, requestJSON: json, key: key, route: route, generation: generation,
                                clientAddress: clientAddress)))
                }
                respondFromCache(entry, outcome: .stale(.revalidating), now: now, &actions)
                return actions
            }
            if stale.ifError > .zero, pastTTL <= stale.ifError.nanoseconds / 1_000_000 { staleEntry = entry }
            self.exchange!.outcome = .expired(exchange.request.isHead ? .notStored(.headRequest) : .pending)
        case .miss:
            self.exchange!.outcome = .miss(exchange.request.isHead ? .notStored(.headRequest) : .pending)
        case .corrupt(let detail):
            actions.append(.warn(.corruptEntry(detail)))
            self.exchange!.outcome = .miss(exchange.request.isHead ? .notStored(.headRequest) : .pending)
        case .unavailable(let error):
            actions.append(.warn(.redisLookupFailed(error)))
            self.exchange!.outcome = .bypass(.redisUnavailable)
        }
        let store =
            self.exchange!.outcome.storeResult == .pending || staleEntry != nil
            ? StoreTarget(
                key: key, route: route, requestBody: body, requestJSON: json, generation: generation, lookedUpAt: now,
                staleEntry: staleEntry)
            : nil
        if let store, self.exchange!.outcome.storeResult == .pending, route.coalesceTimeout > .zero {
            self.exchange!.responseSide = .joining(body: body, store)
            actions.append(.joinFetch(digest: key.digest, request: exchange.id))
            return actions
        }
        startForwarding(body: body, ended: true, store: store, &actions)
        updateReading(&actions)
        return actions
    }

    mutating func storeCompleted(request id: Int, _ result: Result<StoreReply, any Error>) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id, case .storing(let head, let body, let entry) = exchange.responseSide
        else {
            return []
        }
        var actions = takeActionBuffer()
        switch result {
        case .success(.stored):
            self.exchange!.outcome = exchange.outcome.with(.stored)
            releasedByStore(&actions)
            endLeadership(.stored(entry), &actions)
        case .success(.refusedPurged):
            self.exchange!.outcome = exchange.outcome.with(.notStored(.purged))
            releasedByStore(&actions)
            endLeadership(.failed, &actions)
        case .failure(let error):
            actions.append(.warn(.redisStoreFailed(error)))
            self.exchange!.outcome = exchange.outcome.with(.notStored(.storeFailed))
            endLeadership(.failed, &actions)
        }
        respondBuffered(head, body, &actions)
        return actions
    }

    /// A purge asked by ``Action/purge(_:soft:request:)`` ended: how many entries it touched, or
    /// why it failed.
    mutating func purgeCompleted(request id: Int, _ result: Result<Int, any Error>) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id else { return [] }
        var actions = takeActionBuffer()
        switch exchange.responseSide {
        case .invalidating(let head, let body, let ended):
            switch result {
            case .success(let count): self.exchange!.purged = count
            case .failure(let error):
                let rule = exchange.invalidation?.rule.name ?? "-"
                actions.append(.warn(.purgeFailed(error, rule: rule)))
            }
            streamResponseHead(head, &actions)
            if !exchange.request.isHead, body.readableBytes > 0 { actions.append(.writeBody(body)) }
            if ended {
                finishResponse(&actions)
            } else {
                actions.append(.flush)
                if case .connected = exchange.upstream { actions.append(.setUpstreamReading(clientWritable)) }
            }
        case .purging:
            let status: HTTPResponseStatus
            let json: String
            switch result {
            case .success(let count):
                self.exchange!.outcome = .purge(removed: count)
                status = .ok
                json = "{\"purged\": \(count)}\n"
            case .failure(let error):
                self.exchange!.outcome = .purge(removed: nil)
                status = .serviceUnavailable
                json = ProxyResponses.errorJSON("the purge failed: Redis did not answer", route: nil)
                self.exchange!.errorDetail = "\(error)"
            }
            self.exchange!.status = Int(status.code)
            actions.append(
                .writeHead(
                    ProxyResponses.error(
                        status: status, json: json, version: exchange.request.version, outcome: self.exchange!.outcome,
                        keepAlive: exchange.keepAlive)))
            if !exchange.request.isHead { actions.append(.writeBody(ByteBuffer(string: json))) }
            finishResponse(&actions)
        default:
            return []
        }
        updateReading(&actions)
        return actions
    }

    /// Writes a buffered response (stored or not) and finishes the exchange.
    private mutating func respondBuffered(_ head: HTTPResponseHead, _ body: ByteBuffer, _ actions: inout [Action]) {
        guard let exchange else { return }
        let (responseHead, keepAlive) = ProxyResponses.forwarded(
            head, request: exchange.request, outcome: exchange.outcome, keepAlive: exchange.keepAlive, contentLength: body.readableBytes)
        self.exchange!.keepAlive = keepAlive
        actions.append(.writeHead(responseHead))
        if !exchange.request.isHead, body.readableBytes > 0 { actions.append(.writeBody(body)) }
        finishResponse(&actions)
        updateReading(&actions)
    }

    // MARK: Coalescing events

    /// The coalescer's answer to ``Action/joinFetch(digest:request:)``.
    mutating func fetchJoined(request id: Int, _ role: Coalescer.Role) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id, case .joining(let body, let store) = exchange.responseSide else {
            // The request is gone: give the role back.
            switch role {
            case .leader(let ticket): return [.completeFetch(ticket, .failed)]
            case .follower(let waiter): return [.leaveFetch(waiter)]
            case .alone: return []
            }
        }
        var actions = takeActionBuffer()
        switch role {
        case .leader(let ticket) where !store.route.coalesceAcrossInstances:
            self.exchange!.leaderTicket = ticket
            startForwarding(body: body, ended: true, store: store, &actions)
        case .leader(let ticket):
            self.exchange!.leaderTicket = ticket
            self.exchange!.responseSide = .leasing(body: body, store)
            let timeout = store.route.coalesceTimeout
            actions.append(
                .lease(
                    store.key, ttl: Self.leaseTTL(timeout), waitLimit: timeout, takenIsEnough: store.staleEntry != nil, request: exchange.id
                ))
        case .alone:
            startForwarding(body: body, ended: true, store: store, &actions)
        case .follower(let waiter):
            self.exchange!.responseSide = .waitingForLeader(body: body, store, waiter)
            // Its leader may wait up to coalesce_timeout for another instance, then fetch.
            armUpstreamTimer(.coalesce, after: store.route.coalesceTimeout * 2, &actions)
        }
        updateReading(&actions)
        return actions
    }

    /// What the leader of this request's key delivered: its stored entry, or a release.
    mutating func fetchDelivered(request id: Int, _ delivery: Coalescer.Delivery, now: Int64) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id, case .waitingForLeader(let body, let store, _) = exchange.responseSide
        else { return [] }
        var actions = takeActionBuffer()
        cancelUpstreamTimer(&actions)
        switch delivery {
        case .entry(let entry):
            self.exchange!.responseSide = .forwarding(store: nil)  // no longer waiting; answered below
            respondFromCache(entry, outcome: .coalesced(ttl: entry.remainingTTL(now: now)), now: now, &actions)
        case .stale(let entry):
            self.exchange!.responseSide = .forwarding(store: nil)
            respondFromCache(entry, outcome: .stale(.revalidating), now: now, &actions)
        case .released:
            startForwarding(body: body, ended: true, store: store, &actions)
        }
        updateReading(&actions)
        return actions
    }

    /// A lease lasts half the route's `coalesce_timeout`: an instance waiting for another's fill
    /// outlives a holder that died, and takes the lease over.
    static func leaseTTL(_ coalesceTimeout: TimeAmount) -> TimeAmount {
        max(.milliseconds(100), .nanoseconds(coalesceTimeout.nanoseconds / 2))
    }

    /// The answer to ``Action/lease(_:ttl:waitLimit:request:)``.
    mutating func leaseResolved(request id: Int, key: CacheKey, _ resolution: LeaseResolution, now: Int64) -> [Action] {
        guard connection != .closed, let exchange, exchange.id == id, case .leasing(let body, let store) = exchange.responseSide else {
            // The request is gone: a lease it took goes back.
            if case .acquired(let token) = resolution { return [.releaseLease(key, token: token, inRedis: true)] }
            return []
        }
        var actions = takeActionBuffer()
        switch resolution {
        case .acquired(let token):
            self.exchange!.lease = (key, token)
            startForwarding(body: body, ended: true, store: store, &actions)
        case .filled(let entry):
            endLeadership(.stored(entry), &actions)
            self.exchange!.responseSide = .forwarding(store: nil)  // no longer leasing; answered below
            respondFromCache(entry, outcome: .coalesced(ttl: entry.remainingTTL(now: now)), now: now, &actions)
        case .taken:
            // Another instance fetches: serve the stale entry meanwhile (so do this instance's waiters).
            guard let stale = store.staleEntry else {
                startForwarding(body: body, ended: true, store: store, &actions)
                break
            }
            endLeadership(.servedStale(stale), &actions)
            self.exchange!.responseSide = .forwarding(store: nil)
            respondFromCache(stale, outcome: .stale(.revalidating), now: now, &actions)
        case .uncacheable:
            // Another instance found it not storable: this instance's waiters go now, and the
            // key is remembered here too.
            endLeadership(.uncacheable, &actions)
            startForwarding(body: body, ended: true, store: store, &actions)
        case .fetchAlone, .unavailable:
            startForwarding(body: body, ended: true, store: store, &actions)
        }
        updateReading(&actions)
        return actions
    }

    /// The store script released the lease: only its renewal stops.
    private mutating func releasedByStore(_ actions: inout [Action]) {
        guard let lease = exchange?.lease else { return }
        exchange!.lease = nil
        actions.append(.releaseLease(lease.key, token: lease.token, inRedis: false))
    }

    /// Ends this request's leadership of its key's fetch, if it has it (and gives its lease
    /// back: waiting instances then find the entry, or take the lease themselves).
    private mutating func endLeadership(_ outcome: Coalescer.Outcome, _ actions: inout [Action]) {
        if let lease = exchange?.lease {
            exchange!.lease = nil
            var uncacheable = false
            if case .uncacheable = outcome { uncacheable = true }
            actions.append(.releaseLease(lease.key, token: lease.token, inRedis: true, uncacheable: uncacheable))
        }
        guard let ticket = exchange?.leaderTicket else { return }
        exchange!.leaderTicket = nil
        actions.append(.completeFetch(ticket, outcome))
    }

    /// The exchange ends (or its client left): a leader releases its waiters, a waiter leaves.
    private mutating func leaveCoalescing(_ actions: inout [Action]) {
        endLeadership(.failed, &actions)
        if case .waitingForLeader(_, _, let waiter) = exchange?.responseSide {
            actions.append(.leaveFetch(waiter))
        }
    }

    // MARK: Upstream events

    mutating func upstreamAcquired(reused: Bool) -> [Action] {
        guard connection != .closed, let exchange, case .acquiring(let pending, _) = exchange.upstream else { return [] }
        self.exchange!.upstream = .connected(reused: reused)
        var actions: [Action] = [.writeUpstream(pending)]
        updateReading(&actions)
        return actions
    }

    /// - Parameter now: the time (ms), for the `Age` of a stale answer; nil: the lookup's time.
    mutating func upstreamAcquireFailed(_ error: UpstreamError, now: Int64? = nil) -> [Action] {
        guard connection != .closed, let exchange, case .acquiring = exchange.upstream else { return [] }
        var actions = takeActionBuffer()
        if serveStaleInsteadOfError(.originDown, now: now, &actions) { return actions }
        self.exchange!.upstream = .done
        cancelUpstreamTimer(&actions)
        switch error.code {
        case .poolExhausted:
            respondWithError(.serviceUnavailable, "too many requests are waiting for the upstream", detail: error.detail, &actions)
        case .connectTimeout:
            respondWithError(.gatewayTimeout, "cannot connect to the upstream in time", detail: error.detail, &actions)
        default:
            respondWithError(.badGateway, "cannot connect to the upstream", detail: error.detail, &actions)
        }
        updateReading(&actions)
        return actions
    }

    mutating func upstreamWritabilityChanged(_ writable: Bool) -> [Action] {
        guard exchange != nil else { return [] }
        exchange!.upstreamWritable = writable
        var actions = takeActionBuffer()
        updateReading(&actions)
        return actions
    }

    /// - Parameter now: the time (ms), for the `Age` of a stale answer; nil: the lookup's time.
    mutating func upstreamHead(_ head: HTTPResponseHead, now: Int64? = nil) -> [Action] {
        guard connection != .closed, let exchange, case .forwarding(let store) = exchange.responseSide else { return [] }
        var actions = takeActionBuffer()
        armUpstreamTimer(.read, after: settings.upstreamReadTimeout, &actions)
        self.exchange!.status = Int(head.status.code)
        var head = head
        self.exchange!.originTags = EntryPlanner.takeOriginTags(&head, settings: settings.tags)
        if let store, store.staleEntry != nil, store.route.stale.ifErrorStatuses.contains(Int(head.status.code)) {
            // The origin answered with an error status: the stale entry instead, the error dropped.
            _ = serveStaleInsteadOfError(.originStatus(Int(head.status.code)), now: now, &actions)
            return actions
        }
        if let invalidation = exchange.invalidation, invalidation.rule.triggers(status: Int(head.status.code)) {
            let tags = Self.invalidationTags(invalidation, request: exchange.request, &actions)
            if !tags.isEmpty {
                self.exchange!.responseSide = .invalidating(head, ByteBuffer(), ended: false)
                actions.append(.setUpstreamReading(false))
                actions.append(.purge(.tags(tags), soft: invalidation.rule.soft, request: exchange.id))
                return actions
            }
        }
        if let store {
            if let reason = settings.policy.notStoredReason(requestMethod: exchange.request.method, response: head, route: store.route) {
                self.exchange!.outcome = exchange.outcome.with(.notStored(reason))
                // A status (an error, a 404) says nothing lasting about the key: no hit-for-miss.
                endLeadership(reason == .status ? .failed : .uncacheable, &actions)
                streamResponseHead(head, &actions)
            } else {
                self.exchange!.responseSide = .buffering(head, ByteBuffer(), store)
            }
        } else {
            streamResponseHead(head, &actions)
        }
        return actions
    }

    mutating func upstreamBody(_ part: ByteBuffer) -> [Action] {
        guard connection != .closed, let exchange else { return [] }
        upstreamTimer?.activity = true
        var actions = takeActionBuffer()
        switch exchange.responseSide {
        case .buffering(let head, var body, let store):
            self.exchange!.responseSide = .sent  // placeholder: `body` stays uniquely referenced
            body.writeImmutableBuffer(part)
            if body.readableBytes > store.route.maxBodyBytes {
                self.exchange!.outcome = exchange.outcome.with(.notStored(.tooLarge))
                endLeadership(.uncacheable, &actions)
                streamResponseHead(head, &actions)
                if !exchange.request.isHead { actions.append(.writeBody(body)) }
            } else {
                self.exchange!.responseSide = .buffering(head, body, store)
            }
        case .streaming:
            if !exchange.request.isHead, part.readableBytes > 0 { actions.append(.writeBody(part)) }
        case .invalidating(let head, var body, let ended):
            self.exchange!.responseSide = .sent  // placeholder: `body` stays uniquely referenced
            body.writeImmutableBuffer(part)
            self.exchange!.responseSide = .invalidating(head, body, ended: ended)
        default:
            break
        }
        return actions
    }

    /// A batch of upstream reads ended: flush what was written, and stop reading the upstream
    /// while the client is not taking it.
    mutating func upstreamReadComplete() -> [Action] {
        guard connection != .closed, case .streaming = exchange?.responseSide else { return [] }
        return clientWritable ? [.flush] : [.flush, .setUpstreamReading(false)]
    }

    mutating func upstreamEnd(now: Int64) -> [Action] {
        guard connection != .closed, let exchange, case .connected = exchange.upstream else { return [] }
        var actions = takeActionBuffer()
        cancelUpstreamTimer(&actions)
        if case .ended = exchange.requestSide {
            actions.append(.releaseUpstream)
        } else {
            // The upstream answered before the request body ended: that connection's framing
            // is unfinished, so it is not reused.
            actions.append(.closeUpstream)
        }
        self.exchange!.upstream = .done
        switch exchange.responseSide {
        case .buffering(let head, let body, let store):
            switch storeRequest(head, body, store, now: now) {
            case .store(var request):
                request.leaseToken = exchange.lease?.token
                self.exchange!.responseSide = .storing(head, body, request.entry)
                actions.append(.store(request, request: exchange.id))
            case .skip(let reason):
                self.exchange!.outcome = exchange.outcome.with(.notStored(reason))
                endLeadership(reason == .tooManyTags ? .uncacheable : .failed, &actions)
                respondBuffered(head, body, &actions)
                return actions
            }
        case .invalidating(let head, let body, _):
            self.exchange!.responseSide = .invalidating(head, body, ended: true)
        case .streaming:
            finishResponse(&actions)
        default:
            break
        }
        updateReading(&actions)
        return actions
    }

    /// - Parameter now: the time (ms), for the `Age` of a stale answer; nil: the lookup's time.
    mutating func upstreamFailed(_ error: any Error, now: Int64? = nil) -> [Action] {
        guard connection != .closed, let exchange, Self.hasUpstream(exchange.upstream) else { return [] }
        var actions: [Action] = [.closeUpstream]
        self.exchange!.upstream = .done
        if !Self.retries(exchange, error), serveStaleInsteadOfError(.originDown, now: now, &actions) {
            updateReading(&actions)
            return actions
        }
        switch exchange.responseSide {
        case .forwarding:
            // Sent again only if the method is idempotent, the reused connection dropped (the
            // upstream may have closed it as we wrote) without sending anything (a malformed
            // response is an answer, not a drop), and every byte sent so far is still held.
            if Self.retries(exchange, error), let replay = exchange.replay {
                self.exchange!.retries += 1
                self.exchange!.upstream = .acquiring(pending: replay, pendingBytes: exchange.replayBytes)
                actions.append(.acquireUpstream)
                return actions
            }
            cancelUpstreamTimer(&actions)
            respondWithError(.badGateway, "the upstream closed the connection without answering", detail: "\(error)", &actions)
        case .buffering, .invalidating:
            cancelUpstreamTimer(&actions)
            respondWithError(.badGateway, "the upstream closed the connection mid-response", detail: "\(error)", &actions)
        case .streaming:
            // The client already has the head: the only honest signal left is to cut the connection.
            cancelUpstreamTimer(&actions)
            closeNow(&actions)
        default:
            break
        }
        updateReading(&actions)
        return actions
    }

    /// Whether a failed forward is sent again: the method is idempotent, the reused connection
    /// dropped (the upstream may have closed it as we wrote) without sending anything (a
    /// malformed response is an answer, not a drop), and every byte sent so far is still held.
    private static func retries(_ exchange: Exchange, _ error: any Error) -> Bool {
        guard case .forwarding = exchange.responseSide, case .connected(reused: true) = exchange.upstream else { return false }
        return exchange.request.isIdempotent && exchange.retries < 3 && exchange.replay != nil && !(error is HTTPParserError)
    }

    // MARK: Timers

    /// - Parameter now: the time (ms), for the `Age` of a stale answer; nil: the lookup's time.
    mutating func timerFired(_ slot: TimerSlot, id: Int, now: Int64? = nil) -> [Action] {
        guard connection == .open else { return [] }
        var actions = takeActionBuffer()
        switch slot {
        case .client:
            guard let timer = clientTimer, timer.id == id else { return [] }
            clientTimer = nil
            switch timer.kind {
            case .keepAlive:
                connection = .closing
                actions += cancelTimers()
                actions.append(.closeClient)
            case .header:
                if exchange == nil {
                    reject(
                        RequestRejection(
                            .headerTimeout,
                            "the request head did not arrive within \(ProxyResponses.describe(settings.client.headerTimeout))"),
                        version: .http1_1, &actions)
                }
            case .send:
                if !clientWritable {
                    actions.append(.warn(.requestRejected(RequestRejection(.bodyTimeout, "the client stopped reading its responses"))))
                    if let exchange, Self.hasUpstream(exchange.upstream) { actions.append(.closeUpstream) }
                    closeNow(&actions)
                }
            case .body:
                if timer.activity || !reading {
                    armClientTimer(.body, after: settings.client.bodyTimeout, &actions)
                } else {
                    abortExchange(
                        rejection: RequestRejection(
                            .bodyTimeout, "the request body stalled for \(ProxyResponses.describe(settings.client.bodyTimeout))"),
                        &actions)
                }
            }
        case .upstream:
            guard let timer = upstreamTimer, timer.id == id, let exchange else { return [] }
            upstreamTimer = nil
            switch (timer.kind, exchange.responseSide) {
            case (.coalesce, .waitingForLeader(let body, let store, let waiter)):
                // Waited long enough: a stale entry if there is one (the origin is slow), else fetch alone.
                actions.append(.leaveFetch(waiter))
                if let stale = store.staleEntry, let now,
                    now - stale.storedAt - stale.ttl <= store.route.stale.ifError.nanoseconds / 1_000_000
                {
                    self.exchange!.responseSide = .forwarding(store: nil)
                    respondFromCache(stale, outcome: .stale(.originDown), now: now, &actions)
                } else {
                    startForwarding(body: body, ended: true, store: store, &actions)
                }
            case (.head, .forwarding) where serveStaleInsteadOfError(.originDown, now: now, &actions):
                break
            case (.head, .forwarding):
                actions.append(.closeUpstream)
                self.exchange!.upstream = .done
                respondWithError(
                    .gatewayTimeout, "the upstream did not answer within \(ProxyResponses.describe(settings.upstreamTimeout))",
                    detail: nil, &actions)
            case (.read, _) where timer.activity || !clientWritable,
                (.read, .invalidating):
                // Active, or paused on purpose (a slow client, a purge in progress).
                armUpstreamTimer(.read, after: settings.upstreamReadTimeout, &actions)
            case (.read, .buffering) where serveStaleInsteadOfError(.originDown, now: now, &actions):
                break
            case (.read, .buffering):
                actions.append(.closeUpstream)
                self.exchange!.upstream = .done
                respondWithError(
                    .gatewayTimeout, "the upstream stalled for \(ProxyResponses.describe(settings.upstreamReadTimeout)) mid-response",
                    detail: nil, &actions)
            case (.read, .streaming):
                actions.append(.closeUpstream)
                self.exchange!.upstream = .done
                closeNow(&actions)
            default:
                break
            }
        }
        updateReading(&actions)
        return actions
    }

    // MARK: Request handling

    private mutating func begin(_ head: HTTPRequestParser.Head, _ actions: inout [Action]) {
        let request: ProxyRequest
        do {
            request = try settings.normalizer.normalize(head)
        } catch {
            reject(error, version: head.version, method: head.method, target: head.target, &actions)
            return
        }
        nextExchangeID += 1
        let hasBody = head.framing != .none && head.framing != .length(0)
        if settings.purgeMethod, request.method == "PURGE" {
            beginPurge(request, hasBody: hasBody, &actions)
            return
        }
        if request.expectsContinue, hasBody { actions.append(.sendContinue(request.version)) }
        switch settings.policy.decide(request) {
        case .bypass(let reason):
            exchange = Exchange(
                id: nextExchangeID, request: request, keepAlive: request.keepAlive && !shutdownRequested, outcome: .bypass(reason),
                route: nil, requestSide: .streaming, responseSide: .forwarding(store: nil))
            if let rule = settings.policy.invalidationRule(for: request) {
                exchange!.invalidation = InvalidationCapture(rule: rule, body: rule.readsBody ? ByteBuffer() : nil)
            }
            startForwarding(body: nil, ended: false, store: nil, &actions)
        case .lookup(let route, let lookupMethod):
            exchange = Exchange(
                id: nextExchangeID, request: request, keepAlive: request.keepAlive && !shutdownRequested, outcome: .miss(.pending),
                route: route, requestSide: .collecting(ByteBuffer()), responseSide: .awaitingBody(route, lookupMethod: lookupMethod))
        }
        if hasBody {
            armClientTimer(.body, after: settings.client.bodyTimeout, &actions)
        } else {
            cancelClientTimer(&actions)
        }
    }

    private mutating func body(_ part: ByteBuffer, _ actions: inout [Action]) {
        guard let exchange else { return }
        clientTimer?.activity = true
        switch exchange.requestSide {
        case .collecting(var body):
            self.exchange!.requestSide = .ended  // placeholder: `body` stays uniquely referenced
            body.writeImmutableBuffer(part)
            guard case .awaitingBody(let route, _) = exchange.responseSide, body.readableBytes > route.maxBodyBytes else {
                self.exchange!.requestSide = .collecting(body)
                return
            }
            self.exchange!.outcome = .bypass(.requestTooLarge)
            self.exchange!.requestSide = .streaming
            startForwarding(body: body, ended: false, store: nil, &actions)
        case .streaming:
            if var capture = exchange.invalidation, var captured = capture.body {
                self.exchange!.invalidation = nil  // placeholder: `captured` stays uniquely referenced
                if captured.readableBytes + part.readableBytes > capture.rule.maxBodyBytes {
                    capture.body = nil
                    capture.bodyTooLarge = true
                } else {
                    captured.writeImmutableBuffer(part)
                    capture.body = captured
                }
                self.exchange!.invalidation = capture
            }
            sendUpstream(.body(.byteBuffer(part)), bytes: part.readableBytes, &actions)
        case .ended, .discarding:
            break
        }
    }

    private mutating func end(_ actions: inout [Action]) {
        guard let exchange else { return }
        cancelClientTimer(&actions)
        switch exchange.requestSide {
        case .collecting(let body):
            guard case .awaitingBody(let route, let lookupMethod) = exchange.responseSide else { return }
            switch settings.policy.key(for: exchange.request, route: route, lookupMethod: lookupMethod, body: body) {
            case .key(let key, let json):
                self.exchange!.requestSide = .ended
                self.exchange!.responseSide = .lookingUp(key, route, body: body, json: json)
                actions.append(.lookup(key, request: exchange.id))
            case .bypass(let reason):
                self.exchange!.outcome = .bypass(reason)
                startForwarding(body: body, ended: true, store: nil, &actions)
            }
        case .streaming:
            self.exchange!.requestSide = .ended
            sendUpstream(.end(nil), bytes: 0, &actions)
        case .discarding:
            self.exchange!.requestSide = .ended
            completeExchange(&actions)
        case .ended:
            break
        }
    }

    /// `PURGE <url>` on the main listener (with `admin.purge_method`): the bearer token, then a
    /// purge of every entry of that URL. Its body, if any, is read and dropped.
    private mutating func beginPurge(_ request: ProxyRequest, hasBody: Bool, _ actions: inout [Action]) {
        guard let token = settings.adminToken, AdminToken.matches(request.headers.first(name: "authorization"), token: token) else {
            reject(
                RequestRejection(.unauthorized, "PURGE needs Authorization: Bearer <admin token>"), version: request.version,
                method: request.method, target: request.target, &actions)
            return
        }
        exchange = Exchange(
            id: nextExchangeID, request: request, keepAlive: request.keepAlive && !shutdownRequested, outcome: .purge(removed: nil),
            route: nil, requestSide: hasBody ? .discarding : .ended, responseSide: .purging)
        let soft = request.headers.first(name: "soft-purge").map { $0 == "1" || $0.lowercased() == "true" } ?? false
        if hasBody {
            armClientTimer(.body, after: settings.client.bodyTimeout, &actions)
        } else {
            cancelClientTimer(&actions)
        }
        actions.append(.purge(settings.policy.purgeSelector(url: request.target), soft: soft, request: nextExchangeID))
    }

    /// The tags a write's rule purges, filled from its request; a warning when the body was too
    /// large to read the rule's body fields from.
    private static func invalidationTags(_ capture: InvalidationCapture, request: ProxyRequest, _ actions: inout [Action]) -> [String] {
        if capture.bodyTooLarge { actions.append(.warn(.invalidationBodyTooLarge(rule: capture.rule.name))) }
        var values = TagValues(path: request.path, query: request.query, requestBody: capture.body)
        var tags: [String] = []
        values.render(capture.rule.purge, into: &tags)
        return tags
    }

    /// The entry and its index data, or why it is not stored.
    private func storeRequest(_ head: HTTPResponseHead, _ body: ByteBuffer, _ store: StoreTarget, now: Int64) -> EntryPlanner.Plan {
        guard let exchange else { return .skip(.upstreamFailed) }
        return EntryPlanner.plan(
            route: store.route, key: store.key, request: exchange.request, requestBody: store.requestBody, requestJSON: store.requestJSON,
            generation: store.generation, lookedUpAt: store.lookedUpAt, head: head, body: body, originTags: exchange.originTags, now: now)
    }

    // MARK: Forwarding

    /// Starts the upstream exchange with what is known of the request so far.
    private mutating func startForwarding(body: ByteBuffer?, ended: Bool, store: StoreTarget?, _ actions: inout [Action]) {
        guard let exchange else { return }
        let request = exchange.request
        let bodyBytes = body?.readableBytes ?? 0
        let framing: UpstreamFraming
        if ended {
            let hadBody = request.framing != .none
            framing = bodyBytes > 0 || hadBody || request.announcesEmptyBody ? .length(bodyBytes) : .none
        } else {
            switch request.framing {
            case .none: framing = request.announcesEmptyBody ? .length(0) : .none
            case .length(let length): framing = .length(length)
            case .chunked: framing = .chunked
            }
        }
        var head = request.upstreamHead(
            framing: framing, clientAddress: clientAddress, preserveHost: settings.preserveHost, upstreamHost: settings.upstreamHost)
        if store != nil { ProxyRequest.removeCacheFillHeaders(&head) }
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if let body, bodyBytes > 0 { parts.append(.body(.byteBuffer(body))) }
        if ended { parts.append(.end(nil)) }
        self.exchange!.requestSide = ended ? .ended : .streaming
        self.exchange!.responseSide = .forwarding(store: store)
        self.exchange!.upstream = .acquiring(pending: parts, pendingBytes: bodyBytes)
        self.exchange!.replay = bodyBytes <= settings.maxReplayBytes ? parts : nil
        self.exchange!.replayBytes = bodyBytes
        armUpstreamTimer(.head, after: settings.upstreamTimeout, &actions)
        actions.append(.acquireUpstream)
    }

    private mutating func sendUpstream(_ part: HTTPClientRequestPart, bytes: Int, _ actions: inout [Action]) {
        guard let exchange else { return }
        if exchange.replay != nil {
            self.exchange!.replayBytes += bytes
            if self.exchange!.replayBytes > settings.maxReplayBytes {
                self.exchange!.replay = nil
            } else {
                self.exchange!.replay!.append(part)
            }
        }
        switch exchange.upstream {
        case .acquiring(var pending, let pendingBytes):
            self.exchange!.upstream = .none  // placeholder: `pending` stays uniquely referenced
            pending.append(part)
            self.exchange!.upstream = .acquiring(pending: pending, pendingBytes: pendingBytes + bytes)
        case .connected:
            actions.append(.writeUpstream([part]))
        case .none, .done:
            break
        }
    }

    private mutating func streamResponseHead(_ upstream: HTTPResponseHead, _ actions: inout [Action]) {
        guard let exchange else { return }
        let (head, keepAlive) = ProxyResponses.forwarded(
            upstream, request: exchange.request, outcome: exchange.outcome, keepAlive: exchange.keepAlive, contentLength: nil)
        self.exchange!.keepAlive = keepAlive
        self.exchange!.responseSide = .streaming
        actions.append(.writeHead(head))
    }

    // MARK: Answering

    private mutating func respondFromCache(_ entry: CacheEntry, outcome: CacheOutcome, now: Int64, _ actions: inout [Action]) {
        guard let exchange else { return }
        self.exchange!.outcome = outcome
        self.exchange!.status = entry.status
        actions.append(
            .writeEncodedHead(
                ProxyResponses.hit(entry, request: exchange.request, outcome: outcome, keepAlive: exchange.keepAlive, now: now)))
        if !exchange.request.isHead, entry.body.readableBytes > 0 { actions.append(.writeBody(entry.body)) }
        finishResponse(&actions)
        updateReading(&actions)
    }

    /// The stale entry kept for `stale_if_error`, if the exchange has one and has not answered yet.
    private var staleEntryForError: CacheEntry? {
        switch exchange?.responseSide {
        case .forwarding(let store?): return store.staleEntry
        case .buffering(_, _, let store): return store.staleEntry
        default: return nil
        }
    }

    /// The origin failed before the client got anything: answer with the stale entry instead,
    /// when `stale_if_error` allows. Returns whether it did.
    private mutating func serveStaleInsteadOfError(_ reason: StaleReason, now: Int64?, _ actions: inout [Action]) -> Bool {
        guard let exchange, let entry = staleEntryForError else { return false }
        var store: StoreTarget?
        if case .forwarding(let target?) = exchange.responseSide { store = target }
        if case .buffering(_, _, let target) = exchange.responseSide { store = target }
        let now = now ?? store?.lookedUpAt ?? entry.storedAt
        // Still inside its window now (the origin may have taken a while to fail)?
        guard let store, now - entry.storedAt - entry.ttl <= store.route.stale.ifError.nanoseconds / 1_000_000 else { return false }
        if Self.hasUpstream(exchange.upstream) { actions.append(.closeUpstream) }
        self.exchange!.upstream = .done
        cancelUpstreamTimer(&actions)
        // This instance's waiters get the stale entry too, rather than all trying the failing origin.
        endLeadership(.servedStale(entry), &actions)
        respondFromCache(entry, outcome: .stale(reason), now: now, &actions)
        return true
    }

    /// A 502/503/504 from the proxy. The body names the route; the upstream's address and the
    /// error text only with `errors.detail`. The log always has them.
    private mutating func respondWithError(_ status: HTTPResponseStatus, _ message: String, detail: String?, _ actions: inout [Action]) {
        guard let exchange else { return }
        if exchange.outcome.storeResult == .pending {
            self.exchange!.outcome = exchange.outcome.with(.notStored(.upstreamFailed))
        }
        self.exchange!.status = Int(status.code)
        self.exchange!.errorDetail = detail.map { "\(message): \($0)" } ?? message
        actions.append(.warn(.upstreamError(status: Int(status.code), detail: self.exchange!.errorDetail!)))
        let json = ProxyResponses.errorJSON(
            message, route: exchange.route?.name, upstream: settings.errorDetail ? settings.upstreamDescription : nil,
            detail: settings.errorDetail ? detail : nil)
        actions.append(
            .writeHead(
                ProxyResponses.error(
                    status: status, json: json, version: exchange.request.version, outcome: self.exchange!.outcome,
                    keepAlive: exchange.keepAlive)))
        if !exchange.request.isHead { actions.append(.writeBody(ByteBuffer(string: json))) }
        finishResponse(&actions)
    }

    /// Answers a refused request (no exchange in progress) and closes the connection.
    private mutating func reject(
        _ rejection: RequestRejection, version: HTTPVersion, method: String = "-", target: String = "-", _ actions: inout [Action]
    ) {
        let outcome = CacheOutcome.rejected(rejection.reason)
        let json = ProxyResponses.errorJSON(rejection.detail, route: nil)
        actions.append(.warn(.requestRejected(rejection)))
        actions.append(
            .writeHead(ProxyResponses.error(status: rejection.status, json: json, version: version, outcome: outcome, keepAlive: false)))
        actions.append(.writeBody(ByteBuffer(string: json)))
        actions.append(
            .log(
                RequestLog(
                    method: method, target: target, status: Int(rejection.status.code), outcome: outcome, route: nil,
                    detail: rejection.detail)))
        exchange = nil
        connection = .closing
        actions += cancelTimers()
        actions.append(.writeEnd(close: true))
    }

    /// Ends the current exchange because the client broke it (a bad body, a stalled upload):
    /// its error answer if no response has started, else a plain close.
    private mutating func abortExchange(rejection: RequestRejection, _ actions: inout [Action]) {
        guard let exchange else { return }
        leaveCoalescing(&actions)
        if Self.hasUpstream(exchange.upstream) { actions.append(.closeUpstream) }
        switch exchange.responseSide {
        case .streaming, .sent, .storing:
            actions.append(.warn(.requestRejected(rejection)))
            closeNow(&actions)
        default:
            self.exchange = nil
            reject(rejection, version: exchange.request.version, method: exchange.request.method, target: exchange.request.target, &actions)
        }
    }

    /// The response is written: end it, log it, and go on with the connection.
    private mutating func finishResponse(_ actions: inout [Action]) {
        leaveCoalescing(&actions)
        guard let exchange else { return }
        actions.append(
            .log(
                RequestLog(
                    method: exchange.request.method, target: exchange.request.target, status: exchange.status ?? 200,
                    outcome: exchange.outcome, route: exchange.route?.name ?? exchange.invalidation?.rule.name,
                    detail: exchange.errorDetail, purged: exchange.purged)))
        self.exchange!.responseSide = .sent
        if !exchange.keepAlive || inputFailed && queue.isEmpty {
            self.exchange = nil
            connection = .closing
            actions += cancelTimers()
            actions.append(.writeEnd(close: true))
            return
        }
        actions.append(.writeEnd(close: false))
        switch exchange.requestSide {
        case .collecting, .streaming, .discarding:
            // Answered before the client finished sending: read the rest and drop it (it must be
            // consumed before the next request is read), within the body timeout.
            self.exchange!.requestSide = .discarding
        case .ended:
            completeExchange(&actions)
        }
    }

    /// Both sides are done: on to the next request.
    private mutating func completeExchange(_ actions: inout [Action]) {
        guard case .sent = exchange?.responseSide else { return }
        exchange = nil
        startNextRequest(&actions)
    }

    /// Starts the next queued request (unless the client is not reading its responses).
    private mutating func startNextRequest(_ actions: inout [Action]) {
        guard exchange == nil, connection == .open else { return }
        if shutdownRequested {
            connection = .closing
            actions += cancelTimers()
            actions.append(.closeClient)
            return
        }
        guard clientWritable else { return }
        while exchange == nil, connection == .open, let part = queue.popFirst() {
            switch part {
            case .head(let head):
                queuedRequests -= 1
                begin(head, &actions)
                // Its parts that already arrived.
                while exchange != nil, let next = queue.first, !Self.isNewRequest(next) {
                    queue.removeFirst()
                    switch next {
                    case .body(let body):
                        queuedBytes -= body.readableBytes
                        self.body(body, &actions)
                    case .end:
                        end(&actions)
                    case .head, .failed:
                        break
                    }
                }
            case .failed(let rejection):
                queuedRequests -= 1
                reject(rejection, version: .http1_1, &actions)
                return
            case .body(let body):
                queuedBytes -= body.readableBytes  // parts of a request that was refused
            case .end:
                break
            }
        }
        if exchange == nil, connection == .open {
            if partialHead {
                armClientTimer(.header, after: settings.client.headerTimeout, &actions)
            } else {
                armClientTimer(.keepAlive, after: settings.client.keepAliveTimeout, &actions)
            }
        }
    }

    private static func isNewRequest(_ part: QueuedPart) -> Bool {
        switch part {
        case .head, .failed: return true
        case .body, .end: return false
        }
    }

    private mutating func enqueue(_ part: QueuedPart) {
        switch part {
        case .head, .failed: queuedRequests += 1
        case .body(let body): queuedBytes += body.readableBytes
        case .end: break
        }
        queue.append(part)
    }

    private mutating func closeNow(_ actions: inout [Action]) {
        leaveCoalescing(&actions)
        exchange = nil
        queue.removeAll()
        connection = .closing
        actions += cancelTimers()
        actions.append(.closeClient)
    }

    // MARK: Reading and timers

    /// Tells the shell to pause or resume reading when the answer changes.
    private mutating func updateReading(_ actions: inout [Action]) {
        let wanted = wantsToRead
        if wanted != reading {
            reading = wanted
            actions.append(.setClientReading(wanted))
        }
    }

    private var wantsToRead: Bool {
        guard connection == .open, !inputFailed, clientWritable else { return false }
        if queuedRequests > settings.client.maxPipelinedRequests || queuedBytes > settings.maxQueuedBytes { return false }
        guard let exchange else { return true }
        switch exchange.requestSide {
        case .streaming:
            switch exchange.upstream {
            case .acquiring(_, let pendingBytes): return pendingBytes <= settings.maxPendingBytes
            case .connected: return exchange.upstreamWritable
            case .none, .done: return true
            }
        case .collecting, .ended, .discarding:
            return true
        }
    }

    private mutating func armClientTimer(_ kind: ClientTimerKind, after delay: TimeAmount, _ actions: inout [Action]) {
        timerIDs += 1
        clientTimer = (kind, timerIDs, false)
        actions.append(.setTimer(.client, id: timerIDs, after: delay))
    }

    private mutating func cancelClientTimer(_ actions: inout [Action]) {
        if clientTimer != nil {
            clientTimer = nil
            actions.append(.cancelTimer(.client))
        }
    }

    private mutating func armUpstreamTimer(_ kind: UpstreamTimerKind, after delay: TimeAmount, _ actions: inout [Action]) {
        timerIDs += 1
        upstreamTimer = (kind, timerIDs, false)
        actions.append(.setTimer(.upstream, id: timerIDs, after: delay))
    }

    private mutating func cancelUpstreamTimer(_ actions: inout [Action]) {
        if upstreamTimer != nil {
            upstreamTimer = nil
            actions.append(.cancelTimer(.upstream))
        }
    }

    private mutating func cancelTimers() -> [Action] {
        var actions = takeActionBuffer()
        cancelClientTimer(&actions)
        cancelUpstreamTimer(&actions)
        return actions
    }

    private static func hasUpstream(_ side: UpstreamSide) -> Bool {
        switch side {
        case .acquiring, .connected: return true
        case .none, .done: return false
        }
    }
}
