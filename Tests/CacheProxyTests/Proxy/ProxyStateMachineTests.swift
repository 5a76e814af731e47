import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// Drives ``ProxyStateMachine`` directly: no sockets, no clock.
@Suite struct ProxyStateMachineTests {
    /// Settings for a test; coalescing is off unless `coalesce` is true (most tests are about
    /// other transitions; ``CoalescingStateMachineTests`` turns it on).
    static func settings(
        _ extra: String = "", routes: String = "  - path: /c\n  - path: /p\n    methods: [POST]", coalesce: Bool = false
    ) -> ProxySettings {
        let yaml = """
            listen: 127.0.0.1:0
            upstream: http://127.0.0.1:9
            redis:
              url: redis://127.0.0.1:1/0
            \(extra)
            defaults:
              coalesce_timeout: \(coalesce ? "5s" : "0s")
            routes:
            \(routes)
            """
        return ProxySettings(configuration: try! ProxyConfiguration.parse(yaml: yaml, file: "test.yaml"), maxQueuedBytes: 1000)
    }

    /// A machine for a new connection (its header timer already armed).
    static func machine(_ settings: ProxySettings = settings()) -> ProxyStateMachine {
        var machine = ProxyStateMachine(settings: settings, clientAddress: "127.0.0.1")
        _ = machine.connectionStarted()
        return machine
    }

    static func head(_ raw: String) -> HTTPRequestParser.Head {
        try! parseHead(raw)
    }

    static let get = head("GET /c HTTP/1.1\r\nHost: h\r\n\r\n")
    static let entry = CacheEntry(
        status: 200, headers: [("content-type", "text/plain")], body: ByteBuffer(string: "cached"), storedAt: 1_000_000, ttl: 30_000)
    static let key = CacheKey(method: "GET", host: "h", path: "/c", query: [], bodyDigest: nil, vary: [])

    // MARK: The cache paths

    @Test func hit() {
        var m = Self.machine()
        #expect(describe(m.requestHead(Self.get)) == ["cancelTimer client"])
        #expect(describe(m.requestEnd()) == ["lookup 1"])
        #expect(
            describe(m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_005_000)) == [
                "writeHead 200 HIT age=5", "writeBody 6", "log GET /c 200 HIT", "writeEnd keep-alive", "setTimer client",
            ])
        #expect(m.isIdle)
    }

    @Test func aMemoryHitIsAHitThatSaysSoAndWritesTheStoredBlockAsItIs() throws {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        let actions = m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_005_000, fromMemory: true)
        #expect(
            describe(actions) == [
                "writeHead 200 HIT memory age=5", "writeBody 6", "log GET /c 200 HIT", "writeEnd keep-alive", "setTimer client",
            ])
        guard case .writeEncodedHead(let bytes) = actions.first else { throw TestFailure("no encoded head") }
        #expect(
            String(buffer: bytes)
                == "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nage: 5\r\nx-cache: HIT\r\n"
                + "cache-status: cache-proxy; hit; ttl=25; detail=memory\r\n\r\n")
        #expect(m.isIdle)
    }

    @Test func missIsStoredThenAnswered() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 1, .miss, now: 0)) == ["setTimer upstream", "acquireUpstream"])
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(GET /c) end"])
        #expect(describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))) == ["setTimer upstream"])
        #expect(describe(m.upstreamBody(ByteBuffer(string: "fresh"))) == [])
        #expect(describe(m.upstreamEnd(now: 5)) == ["cancelTimer upstream", "releaseUpstream", "store 1"])
        #expect(
            describe(m.storeCompleted(request: 1, .success(.stored))) == [
                "writeHead 200 MISS stored", "writeBody 5", "log GET /c 200 MISS", "writeEnd keep-alive", "setTimer client",
            ])
    }

    @Test func aStoreRedisRefusesIsWarnedAndTheMissStillAnswered() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        _ = m.upstreamEnd(now: 5)
        #expect(
            describe(m.storeCompleted(request: 1, .failure(RedisClientError.clientShutdown))) == [
                "warn redis-store", "writeHead 200 MISS store-failed", "log GET /c 200 MISS", "writeEnd keep-alive", "setTimer client",
            ])
    }

    @Test func expiredEntryIsRefetchedAndStaleIsNotServed() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(
            describe(m.lookupCompleted(request: 1, .stale(Self.entry, pastTTL: 10), now: 0)) == ["setTimer upstream", "acquireUpstream"])
    }

    @Test func redisTroubleIsABypassAndCorruptIsAMiss() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(
            describe(m.lookupCompleted(request: 1, .unavailable(RedisClientError.clientShutdown), now: 0)) == [
                "warn redis-lookup", "setTimer upstream", "acquireUpstream",
            ])
        _ = m.upstreamAcquired(reused: false)
        #expect(
            describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))) == [
                "setTimer upstream", "writeHead 200 BYPASS redis-unavailable",
            ])

        var n = Self.machine()
        _ = n.requestHead(Self.get)
        _ = n.requestEnd()
        #expect(
            describe(n.lookupCompleted(request: 1, .corrupt(detail: "x"), now: 0)) == [
                "warn corrupt", "setTimer upstream", "acquireUpstream",
            ])
    }

    @Test func unstorableResponsesStream() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        _ = m.upstreamAcquired(reused: false)
        let varied = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Vary": "Accept-Encoding", "Content-Length": "2"])
        #expect(describe(m.upstreamHead(varied)) == ["setTimer upstream", "writeHead 200 MISS vary"])
        #expect(describe(m.upstreamBody(ByteBuffer(string: "ok"))) == ["writeBody 2"])
        #expect(describe(m.upstreamReadComplete()) == ["flush"])
        #expect(
            describe(m.upstreamEnd(now: 0)) == [
                "cancelTimer upstream", "releaseUpstream", "log GET /c 200 MISS", "writeEnd keep-alive", "setTimer client",
            ])
    }

    @Test func lookupAnsweredAfterTheClientLeftIsIgnored() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        _ = m.clientClosed()
        #expect(describe(m.lookupCompleted(request: 1, .fresh(Self.entry), now: 0)) == [])
        #expect(describe(m.timerFired(.client, id: 1)) == [])
    }

    @Test func aStaleLookupForAnotherRequestIsIgnored() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(describe(m.lookupCompleted(request: 7, .fresh(Self.entry), now: 0)) == [])
    }

    // MARK: Request bodies

    @Test func postBodyIsCollectedForTheKeyAndSentWithALength() {
        var m = Self.machine()
        let post = Self.head("POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(describe(m.requestHead(post)) == ["setTimer client"])
        #expect(describe(m.requestBody(ByteBuffer(string: "ab"))) == [])
        #expect(describe(m.requestBody(ByteBuffer(string: "c"))) == [])
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "lookup 1"])
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(POST /p content-length=3) body(3) end"])
    }

    @Test func tooLargeBodyBypassesAndStreams() {
        var m = Self.machine(Self.settings(routes: "  - path: /p\n    methods: [POST]\n    max_body_bytes: 4"))
        _ = m.requestHead(Self.head("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"))
        #expect(describe(m.requestBody(ByteBuffer(string: "abc"))) == [])
        #expect(describe(m.requestBody(ByteBuffer(string: "defg"))) == ["setTimer upstream", "acquireUpstream"])
        #expect(describe(m.requestBody(ByteBuffer(string: "hij"))) == [])  // pending until connected
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(POST /p content-length=10) body(7) body(3)"])
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "writeUpstream end"])
        #expect(
            describe(m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))) == [
                "setTimer upstream", "writeHead 200 BYPASS request-too-large",
            ])
    }

    @Test func uncachedChunkedBodyStreamsChunked() {
        var m = Self.machine()
        #expect(
            describe(m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))) == [
                "setTimer upstream", "acquireUpstream", "setTimer client",
            ])
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(PUT /x transfer-encoding=chunked)"])
        #expect(describe(m.requestBody(ByteBuffer(string: "abc"))) == ["writeUpstream body(3)"])
    }

    @Test func expectContinueIsAnsweredWhenThereIsABody() {
        var m = Self.machine()
        let actions = describe(m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")))
        #expect(actions.first == "sendContinue")
        var n = Self.machine()
        #expect(!describe(n.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"))).contains("sendContinue"))
    }

    // MARK: Pipelining and writability

    @Test func pipelinedRequestsWaitTheirTurn() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(describe(m.requestHead(Self.head("GET /c?2 HTTP/1.1\r\nHost: h\r\n\r\n"))) == [])
        #expect(describe(m.requestEnd()) == [])
        #expect(
            describe(m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000)) == [
                "writeHead 200 HIT age=0", "writeBody 6", "log GET /c 200 HIT", "writeEnd keep-alive", "lookup 2",
            ])
    }

    @Test func aClientThatDoesNotReadStopsTheQueue() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        // The first answer fills the socket: the second waits, reading pauses, a send timer runs.
        #expect(describe(m.clientWritabilityChanged(false)) == ["setTimer client", "setClientReading false"])
        #expect(
            describe(m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000)) == [
                "writeHead 200 HIT age=0", "writeBody 6", "log GET /c 200 HIT", "writeEnd keep-alive",
            ])
        #expect(
            describe(m.clientWritabilityChanged(true)) == ["setTimer client", "cancelTimer client", "lookup 2", "setClientReading true"])
    }

    @Test func aClientThatNeverReadsIsClosed() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        let actions = m.clientWritabilityChanged(false)
        guard case .setTimer(.client, let id, _) = actions.first else {
            Issue.record("no send timer: \(describe(actions))")
            return
        }
        #expect(describe(m.timerFired(.client, id: id)) == ["warn rejected body-timeout", "closeClient"])
    }

    @Test func tooManyPipelinedRequestsPauseReading() {
        var m = Self.machine(Self.settings("client:\n  max_pipelined_requests: 2"))
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        for _ in 0..<2 {
            #expect(describe(m.requestHead(Self.get)) == [])
            _ = m.requestEnd()
        }
        #expect(describe(m.requestHead(Self.get)) == ["setClientReading false"])
    }

    // MARK: Refusals

    @Test func badHeadIsAnsweredAndClosed() {
        var m = Self.machine()
        let actions = describe(m.requestHead(Self.head("GET / HTTP/1.1\r\n\r\n")))
        #expect(
            actions == [
                "warn rejected missing-host", "writeHead 400 REJECTED", "writeBody 58", "log GET / 400 REJECTED", "cancelTimer client",
                "writeEnd close", "setClientReading false",
            ])
        #expect(describe(m.requestHead(Self.get)) == [])
    }

    @Test func parseErrorInTheCurrentBodyAbortsIt() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))
        _ = m.upstreamAcquired(reused: false)
        let actions = describe(m.requestFailed(RequestRejection(.badChunk, "bad")))
        #expect(actions.first == "closeUpstream")
        #expect(actions.contains("writeHead 400 REJECTED"))
        #expect(actions.contains("writeEnd close"))
    }

    @Test func parseErrorAfterAPipelinedRequestWaitsForItsTurn() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(describe(m.requestFailed(RequestRejection(.obsFold, "fold"))) == ["setClientReading false"])
        let actions = describe(m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000))
        #expect(actions.prefix(4) == ["writeHead 200 HIT age=0", "writeBody 6", "log GET /c 200 HIT", "writeEnd keep-alive"])
        #expect(actions.contains("writeHead 400 REJECTED"))
        #expect(actions.last == "writeEnd close")
    }

    // MARK: Upstream trouble

    @Test func idempotentRequestIsRetriedOnANewConnection() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"))
        _ = m.requestBody(ByteBuffer(string: "ok"))
        _ = m.requestEnd()
        _ = m.upstreamAcquired(reused: true)
        #expect(describe(m.upstreamFailed(UpstreamError.closed)) == ["closeUpstream", "acquireUpstream"])
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(PUT /x content-length=2) body(2) end"])
        // A fresh connection failing is not retried.
        #expect(describe(m.upstreamFailed(UpstreamError.closed)).contains("writeHead 502 BYPASS no-route"))
    }

    @Test func postIsNeverRetried() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"))
        _ = m.requestBody(ByteBuffer(string: "ok"))
        _ = m.requestEnd()
        _ = m.upstreamAcquired(reused: true)
        let actions = describe(m.upstreamFailed(UpstreamError.closed))
        #expect(!actions.contains("acquireUpstream"))
        #expect(actions.contains("writeHead 502 BYPASS no-route"))
    }

    @Test func upstreamHeadTimeoutIs504AndStaleTimersAreIgnored() {
        var m = Self.machine()
        let start = m.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        guard case .setTimer(.upstream, let id, _) = start.first else {
            Issue.record("no upstream timer: \(describe(start))")
            return
        }
        _ = m.upstreamAcquired(reused: false)
        #expect(describe(m.timerFired(.upstream, id: id + 100)) == [])
        let actions = describe(m.timerFired(.upstream, id: id))
        #expect(actions.first == "closeUpstream")
        #expect(actions.contains("writeHead 504 BYPASS no-route"))
    }

    @Test func poolExhaustedIs503() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        let actions = describe(m.upstreamAcquireFailed(UpstreamError(code: .poolExhausted, detail: "busy")))
        #expect(actions.contains("writeHead 503 BYPASS no-route"))
    }

    @Test func upstreamFailingMidStreamCutsTheClient() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        #expect(
            describe(m.upstreamFailed(UpstreamError.closed)) == [
                "closeUpstream", "cancelTimer upstream", "closeClient", "setClientReading false",
            ])
    }

    @Test func answeredBeforeTheBodyEndedTheRestIsDrainedThenTheNextRequestRuns() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n"))
        _ = m.upstreamAcquired(reused: false)
        _ = m.requestBody(ByteBuffer(string: "abc"))
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "0"]))
        let end = describe(m.upstreamEnd(now: 0))
        #expect(end.contains("closeUpstream"))  // the upstream connection's request framing is unfinished
        #expect(end.contains("writeEnd keep-alive"))
        #expect(describe(m.requestBody(ByteBuffer(string: "def"))) == [])
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "setTimer client"])
        #expect(m.isIdle)
    }

    @Test func shutdownClosesIdleAtOnceAndBusyAfterTheResponse() {
        var idle = Self.machine()
        #expect(describe(idle.shutdown()) == ["cancelTimer client", "closeClient"])
        var busy = Self.machine()
        _ = busy.requestHead(Self.get)
        _ = busy.requestEnd()
        #expect(describe(busy.shutdown()) == [])
        #expect(describe(busy.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000)).last == "setClientReading false")
    }

    @Test func aPartialHeadBehindARequestGetsTheHeaderTimerOnceThatIsAnswered() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        #expect(describe(m.partialHeadReceived()) == [])
        let actions = m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000)
        guard case .setTimer(.client, let id, let delay) = actions.last else {
            Issue.record("no timer: \(describe(actions))")
            return
        }
        #expect(delay == .seconds(10))  // the header timeout, not the 75 s keep-alive
        #expect(describe(m.timerFired(.client, id: id)).contains("writeHead 408 REJECTED"))
    }

    @Test func aMalformedResponseIsNotRetried() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.upstreamAcquired(reused: true)
        let actions = describe(m.upstreamFailed(HTTPParserError.unexpectedContentLength))
        #expect(!actions.contains("acquireUpstream"))
        #expect(actions.contains("writeHead 502 BYPASS no-route"))
    }

    /// The id of the last `setTimer` for `slot` in `actions`.
    private func timerID(_ slot: ProxyStateMachine.TimerSlot, _ actions: [ProxyStateMachine.Action]) -> Int? {
        actions.reversed().lazy.compactMap { action -> Int? in
            if case .setTimer(slot, let id, _) = action { return id }
            return nil
        }.first
    }

    @Test func upstreamReadTimeoutIs504WhileBufferingAndACloseWhileStreaming() {
        var buffering = Self.machine()
        _ = buffering.requestHead(Self.get)
        _ = buffering.requestEnd()
        _ = buffering.lookupCompleted(request: 1, .miss, now: 0)
        _ = buffering.upstreamAcquired(reused: false)
        let read = timerID(.upstream, buffering.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok)))!
        // Data arrived since the timer was set: it is re-armed, not fired.
        _ = buffering.upstreamBody(ByteBuffer(string: "a"))
        let rearmed = buffering.timerFired(.upstream, id: read)
        #expect(describe(rearmed) == ["setTimer upstream"])
        let actions = describe(buffering.timerFired(.upstream, id: timerID(.upstream, rearmed)!))
        #expect(actions.first == "closeUpstream")
        #expect(actions.contains("writeHead 504 MISS upstream-failed"))

        var streaming = Self.machine()
        _ = streaming.requestHead(Self.head("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = streaming.upstreamAcquired(reused: false)
        let id = timerID(.upstream, streaming.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok)))!
        #expect(describe(streaming.timerFired(.upstream, id: id)) == ["closeUpstream", "closeClient", "setClientReading false"])
    }

    @Test func aStalledRequestBodyIs408AndAnActiveOneIsNot() {
        var m = Self.machine()
        let start = m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"))
        let body = timerID(.client, start)!
        _ = m.requestBody(ByteBuffer(string: "abc"))
        let rearmed = m.timerFired(.client, id: body)
        #expect(describe(rearmed) == ["setTimer client"])
        let actions = describe(m.timerFired(.client, id: timerID(.client, rearmed)!))
        #expect(actions.first == "closeUpstream")
        #expect(actions.contains("writeHead 408 REJECTED"))
        #expect(actions.contains("writeEnd close"))
    }

    @Test func anIdleKeepAliveConnectionIsClosed() {
        var m = Self.machine()
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        let keepAlive = timerID(.client, m.lookupCompleted(request: 1, .fresh(Self.entry), now: 1_000_000))!
        #expect(describe(m.timerFired(.client, id: keepAlive)) == ["closeClient", "setClientReading false"])
    }

    @Test func aResponseThatOutgrowsTheLimitWhileBufferedStreamsUnstored() {
        var m = Self.machine(Self.settings(routes: "  - path: /c\n    max_body_bytes: 4"))
        _ = m.requestHead(Self.get)
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))  // no length: buffered
        #expect(describe(m.upstreamBody(ByteBuffer(string: "abc"))) == [])
        #expect(describe(m.upstreamBody(ByteBuffer(string: "de"))) == ["writeHead 200 MISS too-large", "writeBody 5"])
        #expect(describe(m.upstreamBody(ByteBuffer(string: "f"))) == ["writeBody 1"])
    }

    @Test func backpressureRunsBothWays() {
        var m = Self.machine()
        _ = m.requestHead(Self.head("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n"))
        _ = m.upstreamAcquired(reused: false)
        // The upstream cannot take more of the body: stop reading the client.
        #expect(describe(m.upstreamWritabilityChanged(false)) == ["setClientReading false"])
        #expect(describe(m.upstreamWritabilityChanged(true)) == ["setClientReading true"])
        // The client cannot take more of the response: stop reading the upstream.
        _ = m.upstreamHead(HTTPResponseHead(version: .http1_1, status: .ok))
        #expect(describe(m.clientWritabilityChanged(false)) == ["setUpstreamReading false", "setTimer client", "setClientReading false"])
        #expect(describe(m.upstreamReadComplete()) == ["flush", "setUpstreamReading false"])
        #expect(describe(m.clientWritabilityChanged(true)).prefix(2) == ["setUpstreamReading true", "setTimer client"])
    }

    @Test func headerTimeoutIs408() {
        var m = ProxyStateMachine(settings: Self.settings(), clientAddress: nil)
        let start = m.connectionStarted()
        guard case .setTimer(.client, let id, let delay) = start.first else {
            Issue.record("no header timer")
            return
        }
        #expect(delay == .seconds(10))
        let actions = describe(m.timerFired(.client, id: id))
        #expect(actions.contains("writeHead 408 REJECTED"))
        #expect(actions.contains("writeEnd close"))
    }
}

/// One line per action, short enough to compare in a test.
/// The head a ``ProxyStateMachine/Action/writeEncodedHead(_:)`` writes, parsed back.
func parseResponseHead(_ bytes: ByteBuffer) -> HTTPResponseHead? {
    let text = String(buffer: bytes)
    guard text.hasSuffix("\r\n\r\n") else { return nil }
    // ("\r\n" is one Character: cut by UTF-8 length, not by Characters.)
    var lines = String(decoding: text.utf8.dropLast(4), as: UTF8.self).components(separatedBy: "\r\n")
    let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
    guard statusLine.count >= 2, let code = Int(statusLine[1]) else { return nil }
    let version: HTTPVersion = statusLine[0] == "HTTP/1.0" ? .http1_0 : .http1_1
    var headers = HTTPHeaders()
    for line in lines {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        headers.add(name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop(while: { $0 == " " })))
    }
    return HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: code), headers: headers)
}

func describe(_ actions: [ProxyStateMachine.Action]) -> [String] {
    actions.map { action in
        var action = action
        if case .writeEncodedHead(let bytes) = action, let head = parseResponseHead(bytes) { action = .writeHead(head) }
        switch action {
        case .sendContinue: return "sendContinue"
        case .writeEncodedHead: return "writeEncodedHead (does not parse)"
        case .writeHead(let head):
            var text = "writeHead \(head.status.code) \(head.headers.first(name: "x-cache") ?? "-")"
            let status = head.headers.first(name: "cache-status") ?? ""
            if status.contains("; stored") { text += " stored" }
            if let forwarded = status.split(separator: "fwd-status=").last, status.contains("fwd-status=") {
                text += " fwd-status=\(forwarded)"
            }
            if let detail = status.split(separator: "detail=").last, status.contains("detail="), !text.hasSuffix("REJECTED") {
                text += " \(detail)"
            }
            if let age = head.headers.first(name: "age") { text += " age=\(age)" }
            return text
        case .writeBody(let body): return "writeBody \(body.readableBytes)"
        case .writeEnd(let close): return close ? "writeEnd close" : "writeEnd keep-alive"
        case .flush: return "flush"
        case .setClientReading(let reading): return "setClientReading \(reading)"
        case .closeClient: return "closeClient"
        case .setTimer(let slot, _, _): return "setTimer \(slot)"
        case .cancelTimer(let slot): return "cancelTimer \(slot)"
        case .lookup(_, let id): return "lookup \(id)"
        case .store(_, let id): return "store \(id)"
        case .purge(let selector, let soft, let id): return "purge \(selector)\(soft ? " soft" : "") \(id)"
        case .refresh(let job): return "refresh \(job.key.path)"
        case .joinFetch(_, let id): return "joinFetch \(id)"
        case .completeFetch(_, let outcome):
            switch outcome {
            case .stored: return "completeFetch stored"
            case .servedStale: return "completeFetch servedStale"
            case .uncacheable: return "completeFetch uncacheable"
            case .failed: return "completeFetch failed"
            }
        case .leaveFetch: return "leaveFetch"
        case .lease(_, let ttl, let wait, let takenIsEnough, let id):
            return "lease \(ttl.nanoseconds / 1_000_000)ms/\(wait.nanoseconds / 1_000_000)ms\(takenIsEnough ? " or-stale" : "") \(id)"
        case .releaseLease(_, let token, let inRedis, let uncacheable):
            if !inRedis { return "leaseReleasedByStore \(token)" }
            return uncacheable ? "releaseLease \(token) uncacheable" : "releaseLease \(token)"
        case .acquireUpstream: return "acquireUpstream"
        case .writeUpstream(let parts):
            return "writeUpstream "
                + parts.map { part in
                    switch part {
                    case .head(let head):
                        var text = "head(\(head.method.rawValue) \(head.uri)"
                        if let length = head.headers.first(name: "content-length") { text += " content-length=\(length)" }
                        if let coding = head.headers.first(name: "transfer-encoding") { text += " transfer-encoding=\(coding)" }
                        return text + ")"
                    case .body(let body): return "body(\(body.readableBytes))"
                    case .end: return "end"
                    }
                }.joined(separator: " ")
        case .setUpstreamReading(let reading): return "setUpstreamReading \(reading)"
        case .releaseUpstream: return "releaseUpstream"
        case .closeUpstream: return "closeUpstream"
        case .log(let log):
            return "log \(log.method) \(log.target) \(log.status) \(log.outcome.name)" + (log.purged.map { " purged=\($0)" } ?? "")
        case .warn(let warning):
            switch warning {
            case .redisLookupFailed: return "warn redis-lookup"
            case .corruptEntry: return "warn corrupt"
            case .redisStoreFailed: return "warn redis-store"
            case .purgeFailed(_, let rule): return "warn purge-failed \(rule)"
            case .invalidationBodyTooLarge(let rule): return "warn invalidation-body \(rule)"
            case .upstreamError(let status, _): return "warn upstream \(status)"
            case .requestRejected(let rejection): return "warn rejected \(rejection.reason.rawValue)"
            }
        }
    }
}
