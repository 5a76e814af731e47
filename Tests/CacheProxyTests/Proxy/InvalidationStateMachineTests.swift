import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// Invalidation in ``ProxyStateMachine``: a write's purge before its response, origin tags,
/// `body_key: json` keys and `PURGE`. Uses `describe(_:)` and the builders of
/// ``ProxyStateMachineTests``.
@Suite struct InvalidationStateMachineTests {
    static let rules = """
        invalidate:
          - name: edit-user
            path: /user/edit_user/
            purge: [show_all_user, "user:{body.nick_name}"]
            max_body_bytes: 64
          - name: delete-user
            path: /users/*
            methods: [DELETE]
            statuses: [204]
            soft: true
            purge: ["user:{path.2}", "q:{query.v}"]
          - name: profile
            path: /profile
            purge: ["profile:{body.id}"]
        """

    static let token = "0123456789abcdef0123"

    static func machine(_ extra: String = rules, routes: String = "  - path: /c") -> ProxyStateMachine {
        ProxyStateMachineTests.machine(ProxyStateMachineTests.settings(extra, routes: routes))
    }

    static func head(_ raw: String) -> HTTPRequestParser.Head { ProxyStateMachineTests.head(raw) }

    static func response(_ status: HTTPResponseStatus, _ headers: [(String, String)] = []) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
    }

    /// Sends a whole write (head, body, end) and connects its upstream; checks each step.
    static func sendWrite(
        _ m: inout ProxyStateMachine, _ method: String = "POST", _ target: String = "/user/edit_user/", body: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let length = body.utf8.count
        #expect(
            describe(m.requestHead(head("\(method) \(target) HTTP/1.1\r\nHost: h\r\nContent-Length: \(length)\r\n\r\n")))
                == ["setTimer upstream", "acquireUpstream"] + (length > 0 ? ["setTimer client"] : ["cancelTimer client"]),
            sourceLocation: sourceLocation)
        if length > 0 {
            #expect(describe(m.requestBody(ByteBuffer(string: body))) == [], sourceLocation: sourceLocation)
            #expect(describe(m.requestEnd()) == ["cancelTimer client"], sourceLocation: sourceLocation)
        } else {
            #expect(describe(m.requestEnd()) == [], sourceLocation: sourceLocation)
        }
        #expect(
            describe(m.upstreamAcquired(reused: false))
                == ["writeUpstream head(\(method) \(target) content-length=\(length))" + (length > 0 ? " body(\(length))" : "") + " end"],
            sourceLocation: sourceLocation)
    }

    // MARK: Finding actions

    static func writtenHead(_ actions: [ProxyStateMachine.Action]) -> HTTPResponseHead? {
        for action in actions {
            switch action {
            case .writeHead(let head): return head
            case .writeEncodedHead(let bytes): return parseResponseHead(bytes)
            default: continue
            }
        }
        return nil
    }

    static func writtenBody(_ actions: [ProxyStateMachine.Action]) -> String {
        var text = ""
        for case .writeBody(let body) in actions { text += String(buffer: body) }
        return text
    }

    static func storeRequest(_ actions: [ProxyStateMachine.Action]) -> StoreRequest? {
        for case .store(let request, _) in actions { return request }
        return nil
    }

    static func log(_ actions: [ProxyStateMachine.Action]) -> ProxyStateMachine.RequestLog? {
        for case .log(let log) in actions { return log }
        return nil
    }

    static func lookupKey(_ actions: [ProxyStateMachine.Action]) -> CacheKey? {
        for case .lookup(let key, _) in actions { return key }
        return nil
    }

    // MARK: Purge before the response

    @Test func thePurgeRunsBeforeAnythingIsWrittenAndTheBodyWaits() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        #expect(
            describe(m.upstreamHead(Self.response(.ok, [("Content-Length", "11")]))) == [
                "setTimer upstream", "setUpstreamReading false", "purge tags [\"show_all_user\", \"user:bob\"] 1",
            ])
        // Body that arrives during the purge is held, not written.
        #expect(describe(m.upstreamBody(ByteBuffer(string: "{\"ok\":"))) == [])
        #expect(describe(m.upstreamReadComplete()) == [])
        let done = m.purgeCompleted(request: 1, .success(3))
        #expect(describe(done) == ["writeHead 200 BYPASS no-route", "writeBody 6", "flush", "setUpstreamReading true"])
        #expect(Self.writtenBody(done) == "{\"ok\":")
        #expect(Self.writtenHead(done)?.headers.first(name: "content-length") == "11")
        // The rest streams as it comes.
        #expect(describe(m.upstreamBody(ByteBuffer(string: "true}"))) == ["writeBody 5"])
        #expect(describe(m.upstreamReadComplete()) == ["flush"])
        let end = m.upstreamEnd(now: 0)
        #expect(
            describe(end) == [
                "cancelTimer upstream", "releaseUpstream", "log POST /user/edit_user/ 200 BYPASS purged=3", "writeEnd keep-alive",
                "setTimer client",
            ])
        #expect(Self.log(end)?.route == "edit-user")
        #expect(Self.log(end)?.purged == 3)
        #expect(m.isIdle)
    }

    @Test func anUpstreamThatEndsDuringThePurgeIsAnsweredWholeAfterIt() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.created, [("Content-Length", "11"), ("Content-Type", "application/json")]))
        #expect(describe(m.upstreamBody(ByteBuffer(string: "{\"ok\":"))) == [])
        #expect(describe(m.upstreamBody(ByteBuffer(string: "true}"))) == [])
        // The connection goes back to the pool; the client still has nothing.
        #expect(describe(m.upstreamEnd(now: 0)) == ["cancelTimer upstream", "releaseUpstream"])
        let done = m.purgeCompleted(request: 1, .success(0))
        #expect(
            describe(done) == [
                "writeHead 201 BYPASS no-route", "writeBody 11", "log POST /user/edit_user/ 201 BYPASS purged=0", "writeEnd keep-alive",
                "setTimer client",
            ])
        #expect(Self.writtenBody(done) == "{\"ok\":true}")
        #expect(Self.writtenHead(done)?.headers.first(name: "content-type") == "application/json")
        #expect(m.isIdle)
    }

    @Test func aFailedPurgeIsWarnedAndTheClientStillGetsItsAnswer() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok, [("Content-Length", "2")]))
        _ = m.upstreamBody(ByteBuffer(string: "ok"))
        _ = m.upstreamEnd(now: 0)
        let done = m.purgeCompleted(request: 1, .failure(RedisClientError.clientShutdown))
        #expect(
            describe(done) == [
                "warn purge-failed edit-user", "writeHead 200 BYPASS no-route", "writeBody 2", "log POST /user/edit_user/ 200 BYPASS",
                "writeEnd keep-alive", "setTimer client",
            ])
        #expect(Self.log(done)?.purged == nil)
    }

    /// A default rule purges on any 2xx; anything else streams at once, with no purge.
    @Test(arguments: [
        HTTPResponseStatus.notFound, .badRequest, .conflict, .internalServerError, .found, .notModified,
    ])
    func aNonTriggeringStatusStreamsWithoutAPurge(status: HTTPResponseStatus) {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        #expect(describe(m.upstreamHead(Self.response(status))) == ["setTimer upstream", "writeHead \(status.code) BYPASS no-route"])
    }

    @Test(arguments: [HTTPResponseStatus.ok, .created, .accepted, .noContent, .imUsed])
    func everyTwoHundredTriggersADefaultRule(status: HTTPResponseStatus) {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        #expect(
            describe(m.upstreamHead(Self.response(status))) == [
                "setTimer upstream", "setUpstreamReading false", "purge tags [\"show_all_user\", \"user:bob\"] 1",
            ])
    }

    @Test func aRuleWithStatusesTriggersOnlyOnThoseAndItsSoftFlagAndPathAreUsed() {
        var deleted = Self.machine()
        Self.sendWrite(&deleted, "DELETE", "/users/a%20b?v=1&v=2", body: "")
        #expect(
            describe(deleted.upstreamHead(Self.response(.noContent))) == [
                "setTimer upstream", "setUpstreamReading false", "purge tags [\"user:a b\", \"q:1\", \"q:2\"] soft 1",
            ])

        var ok = Self.machine()
        Self.sendWrite(&ok, "DELETE", "/users/7", body: "")
        #expect(describe(ok.upstreamHead(Self.response(.ok))) == ["setTimer upstream", "writeHead 200 BYPASS no-route"])

        // The rule is for DELETE only: a PUT there is a plain bypass.
        var put = Self.machine()
        Self.sendWrite(&put, "PUT", "/users/7", body: "")
        #expect(describe(put.upstreamHead(Self.response(.noContent))) == ["setTimer upstream", "writeHead 204 BYPASS no-route"])
    }

    @Test func aWriteOnACachedRoutesPathWithAnotherMethodStillPurges() {
        var m = Self.machine(routes: "  - path: /user/edit_user/")
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        #expect(
            describe(m.upstreamHead(Self.response(.ok))) == [
                "setTimer upstream", "setUpstreamReading false", "purge tags [\"show_all_user\", \"user:bob\"] 1",
            ])
        _ = m.upstreamEnd(now: 0)
        #expect(describe(m.purgeCompleted(request: 1, .success(1))).first == "writeHead 200 BYPASS method")
    }

    @Test func aBodyLargerThanTheRuleReadsIsWarnedAndItsBodyTagsAreNotFilled() {
        var m = Self.machine()
        // 65 bytes (the rule reads 64), in two parts that cross the limit.
        let body = #"{"nick_name": "bob", "padding": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#
        #expect(body.utf8.count == 65)
        _ = m.requestHead(Self.head("POST /user/edit_user/ HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n\r\n"))
        #expect(describe(m.requestBody(ByteBuffer(string: String(body.prefix(40))))) == [])
        #expect(describe(m.requestBody(ByteBuffer(string: String(body.dropFirst(40))))) == [])
        _ = m.requestEnd()
        // The whole body still goes upstream.
        #expect(
            describe(m.upstreamAcquired(reused: false)) == [
                "writeUpstream head(POST /user/edit_user/ content-length=65) body(40) body(25) end"
            ])
        #expect(
            describe(m.upstreamHead(Self.response(.ok))) == [
                "setTimer upstream", "warn invalidation-body edit-user", "setUpstreamReading false", "purge tags [\"show_all_user\"] 1",
            ])
    }

    @Test func aBodyOfExactlyTheRulesLimitIsRead() {
        var m = Self.machine()
        let body = #"{"nick_name": "bob", "padding": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#
        #expect(body.utf8.count == 64)
        Self.sendWrite(&m, body: body)
        #expect(
            describe(m.upstreamHead(Self.response(.ok))) == [
                "setTimer upstream", "setUpstreamReading false", "purge tags [\"show_all_user\", \"user:bob\"] 1",
            ])
    }

    @Test func aRuleWhoseTagsAllStayEmptyStreamsAtOnce() {
        var m = Self.machine()
        Self.sendWrite(&m, "POST", "/profile", body: "id=5")  // not JSON: {body.id} has no value
        #expect(describe(m.upstreamHead(Self.response(.ok))) == ["setTimer upstream", "writeHead 200 BYPASS no-route"])
    }

    @Test func theClientBecomingWritableDuringThePurgeDoesNotResumeTheUpstream() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok))
        #expect(describe(m.clientWritabilityChanged(false)) == ["setTimer client", "setClientReading false"])
        let writable = describe(m.clientWritabilityChanged(true))
        #expect(!writable.contains("setUpstreamReading true"))
        #expect(!writable.contains { $0.hasPrefix("writeHead") })
        #expect(describe(m.purgeCompleted(request: 1, .success(1))).suffix(2) == ["flush", "setUpstreamReading true"])
    }

    @Test func aClientThatIsNotReadingKeepsTheUpstreamPausedAfterThePurge() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok))
        _ = m.clientWritabilityChanged(false)
        #expect(
            describe(m.purgeCompleted(request: 1, .success(1))) == [
                "writeHead 200 BYPASS no-route", "flush", "setUpstreamReading false",
            ])
    }

    @Test func theUpstreamReadTimerIsRearmedWhileThePurgeRuns() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        let actions = m.upstreamHead(Self.response(.ok))
        guard case .setTimer(.upstream, let id, _) = actions.first else {
            Issue.record("no read timer: \(describe(actions))")
            return
        }
        #expect(describe(m.timerFired(.upstream, id: id)) == ["setTimer upstream"])
    }

    @Test func aPurgeAnswerForAnotherRequestIsIgnored() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok))
        #expect(describe(m.purgeCompleted(request: 2, .success(1))) == [])
        #expect(describe(m.purgeCompleted(request: 1, .success(1))).first == "writeHead 200 BYPASS no-route")
        // Answered once: a repeat is ignored.
        #expect(describe(m.purgeCompleted(request: 1, .success(1))) == [])
    }

    @Test func anUpstreamFailureDuringThePurgeIs502AndTheLatePurgeAnswerIsIgnored() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok))
        let failed = describe(m.upstreamFailed(UpstreamError.closed))
        #expect(failed.prefix(4) == ["closeUpstream", "cancelTimer upstream", "warn upstream 502", "writeHead 502 BYPASS no-route"])
        #expect(describe(m.purgeCompleted(request: 1, .success(1))) == [])
    }

    @Test func aClientThatLeavesDuringThePurgeIgnoresItsAnswer() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok))
        #expect(describe(m.clientClosed()) == ["closeUpstream", "cancelTimer upstream"])
        #expect(describe(m.purgeCompleted(request: 1, .success(1))) == [])
    }

    @Test func aShutdownDuringThePurgeClosesAfterTheAnswer() {
        var m = Self.machine()
        Self.sendWrite(&m, body: #"{"nick_name": "bob"}"#)
        _ = m.upstreamHead(Self.response(.ok, [("Content-Length", "0")]))
        _ = m.upstreamEnd(now: 0)
        #expect(describe(m.shutdown()) == [])
        let done = m.purgeCompleted(request: 1, .success(1))
        #expect(describe(done).suffix(2) == ["writeEnd close", "setClientReading false"])
        #expect(Self.writtenHead(done)?.headers.first(name: "connection") == "close")
    }

    // MARK: Origin tags

    static let userRoutes = "  - path: /users/*\n    name: users\n    tags: [\"user:{path.2}\", \"order:{response.*.order_id}\"]"

    /// A GET on a cached route answered by the origin with `headers` and `body`, up to the store.
    static func fetch(
        _ m: inout ProxyStateMachine, _ target: String, headers: [(String, String)], body: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [ProxyStateMachine.Action] {
        _ = m.requestHead(head("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(describe(m.requestEnd()) == ["lookup 1"], sourceLocation: sourceLocation)
        _ = m.lookupCompleted(request: 1, .miss, generation: 9, now: 0)
        _ = m.upstreamAcquired(reused: false)
        #expect(describe(m.upstreamHead(response(.ok, headers))) == ["setTimer upstream"], sourceLocation: sourceLocation)
        #expect(describe(m.upstreamBody(ByteBuffer(string: body))) == [], sourceLocation: sourceLocation)
        let end = m.upstreamEnd(now: 5)
        #expect(describe(end) == ["cancelTimer upstream", "releaseUpstream", "store 1"], sourceLocation: sourceLocation)
        return end
    }

    @Test func theOriginTagHeaderGoesIntoTheEntryAndNotToTheClient() throws {
        var m = Self.machine(routes: Self.userRoutes)
        let body = #"[{"order_id": 10}, {"order_id": 11}]"#
        let end = Self.fetch(
            &m, "/users/7?x=1",
            headers: [("Content-Type", "application/json"), ("Surrogate-Key", "team:1 users,org:2"), ("surrogate-key", "user:7  extra")],
            body: body)
        let store = try #require(Self.storeRequest(end))
        // Route name first, then the route's tags, then the origin's (without repeats).
        #expect(store.entry.tags == ["users", "user:7", "order:10", "order:11", "team:1", "org:2", "extra"])
        #expect(!store.entry.headers.contains { $0.name.lowercased() == "surrogate-key" })
        #expect(store.entry.headers.contains { $0.name == "Content-Type" && $0.value == "application/json" })
        #expect(String(buffer: store.entry.body) == body)
        #expect(store.generation == 9)
        #expect(store.url == "/users/7?x=1")
        let answer = m.storeCompleted(request: 1, .success(.stored))
        #expect(
            describe(answer) == [
                "writeHead 200 MISS stored", "writeBody \(body.utf8.count)", "log GET /users/7?x=1 200 MISS", "writeEnd keep-alive",
                "setTimer client",
            ])
        let head = try #require(Self.writtenHead(answer))
        #expect(head.headers["surrogate-key"].isEmpty)
        #expect(head.headers.first(name: "content-type") == "application/json")
    }

    @Test func aStreamedResponseLosesTheOriginTagHeaderToo() throws {
        var m = Self.machine()
        _ = m.requestHead(Self.head("GET /uncached HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.upstreamAcquired(reused: false)
        let actions = m.upstreamHead(Self.response(.ok, [("Surrogate-Key", "a b"), ("X-Other", "1")]))
        #expect(describe(actions) == ["setTimer upstream", "writeHead 200 BYPASS no-route"])
        let head = try #require(Self.writtenHead(actions))
        #expect(head.headers["surrogate-key"].isEmpty)
        #expect(head.headers.first(name: "x-other") == "1")
    }

    @Test func keptWhenStrippingIsOff() throws {
        var m = Self.machine("tags:\n  strip_response_header: false", routes: Self.userRoutes)
        let end = Self.fetch(&m, "/users/7", headers: [("Surrogate-Key", "a b")], body: "{}")
        #expect(try #require(Self.storeRequest(end)).entry.tags == ["users", "user:7", "a", "b"])
        let head = try #require(Self.writtenHead(m.storeCompleted(request: 1, .success(.stored))))
        #expect(head.headers.first(name: "surrogate-key") == "a b")
    }

    @Test func anotherTagHeaderCanBeNamed() throws {
        var m = Self.machine("tags:\n  response_header: Cache-Tag", routes: Self.userRoutes)
        let end = Self.fetch(&m, "/users/7", headers: [("Cache-Tag", "a,b"), ("Surrogate-Key", "not-a-tag")], body: "{}")
        #expect(try #require(Self.storeRequest(end)).entry.tags == ["users", "user:7", "a", "b"])
        let head = try #require(Self.writtenHead(m.storeCompleted(request: 1, .success(.stored))))
        #expect(head.headers["cache-tag"].isEmpty)
        #expect(head.headers.first(name: "surrogate-key") == "not-a-tag")
    }

    @Test func noOriginTagsWhenTheHeaderIsOff() throws {
        var m = Self.machine("tags:\n  response_header: none", routes: Self.userRoutes)
        let end = Self.fetch(&m, "/users/7", headers: [("Surrogate-Key", "a b")], body: "{}")
        #expect(try #require(Self.storeRequest(end)).entry.tags == ["users", "user:7"])
        let head = try #require(Self.writtenHead(m.storeCompleted(request: 1, .success(.stored))))
        #expect(head.headers.first(name: "surrogate-key") == "a b")
    }

    @Test func aStoreRefusedBecauseOfAPurgeIsStillAnswered() throws {
        var m = Self.machine(routes: Self.userRoutes)
        _ = Self.fetch(&m, "/users/7", headers: [("Content-Length", "2")], body: "{}")
        let answer = m.storeCompleted(request: 1, .success(.refusedPurged))
        #expect(
            describe(answer) == [
                "writeHead 200 MISS purged", "writeBody 2", "log GET /users/7 200 MISS", "writeEnd keep-alive", "setTimer client",
            ])
        let head = try #require(Self.writtenHead(answer))
        #expect(head.headers.first(name: "cache-status") == "cache-proxy; fwd=uri-miss; detail=purged")
        #expect(head.headers.first(name: "x-cache") == "MISS")
        #expect(Self.log(answer)?.outcome == .miss(.notStored(.purged)))
    }

    /// An entry carries at most 2,000 tags (route name, route tags and origin tags together).
    @Test(arguments: [(1998, true), (1999, false)])
    func anEntryWithTooManyTagsIsNotStored(originTags: Int, stored: Bool) {
        var m = Self.machine(routes: Self.userRoutes)
        let header = (0..<originTags).map { "t\($0)" }.joined(separator: " ")
        _ = m.requestHead(Self.head("GET /users/7 HTTP/1.1\r\nHost: h\r\n\r\n"))
        _ = m.requestEnd()
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(Self.response(.ok, [("Surrogate-Key", header)]))
        _ = m.upstreamBody(ByteBuffer(string: "{}"))
        let end = m.upstreamEnd(now: 1)
        if stored {
            #expect(Self.storeRequest(end)?.entry.tags.count == 2000)
        } else {
            #expect(Self.storeRequest(end) == nil)
            #expect(describe(end).contains("writeHead 200 MISS too-many-tags"))
        }
    }

    // MARK: body_key: json

    /// The key a POST with `body` gets on `routes`, or nil (with an issue) when it gets none.
    static func key(_ body: String, routes: String, sourceLocation: SourceLocation = #_sourceLocation) -> CacheKey? {
        var m = machine("", routes: routes)
        _ = m.requestHead(head("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.utf8.count)\r\n\r\n"))
        if !body.isEmpty { _ = m.requestBody(ByteBuffer(string: body)) }
        let actions = m.requestEnd()
        let key = lookupKey(actions)
        #expect(key != nil, "no lookup: \(describe(actions))", sourceLocation: sourceLocation)
        return key
    }

    static let json = "  - path: /s\n    methods: [POST]\n    body_key: json"
    static let raw = "  - path: /s\n    methods: [POST]"

    @Test(arguments: [
        (#"{"a":1,"b":[1,2],"c":{"x":"é","y":null}}"#, #"{ "c" : { "y" : null, "x" : "\u00e9" }, "b" : [ 1, 2.0 ], "a" : 1e0 }"#),
        ("[1,2]", "[ 1 ,\n 2 ]"),
        (#""s""#, #" "s" "#),
    ])
    func reorderedKeysAndWhitespaceGiveTheSameJSONKey(one: String, other: String) throws {
        let first = try #require(Self.key(one, routes: Self.json))
        let second = try #require(Self.key(other, routes: Self.json))
        #expect(first == second)
        #expect(first.digest == second.digest)
        #expect(first.bodyDigest?.hasPrefix("jcs:") == true)
        // A raw route keeps them apart.
        #expect(Self.key(one, routes: Self.raw) != Self.key(other, routes: Self.raw))
    }

    @Test func differentJSONValuesGiveDifferentKeys() throws {
        let base = try #require(Self.key(#"{"a":1,"b":2}"#, routes: Self.json))
        for other in [#"{"a":1,"b":3}"#, #"{"a":1}"#, #"{"a":1,"b":2,"c":null}"#, #"{"a":"1","b":2}"#, #"[{"a":1,"b":2}]"#] {
            #expect(Self.key(other, routes: Self.json) != base, "\(other)")
        }
        // Canonical JSON and the same bytes hashed raw are different keys too.
        #expect(Self.key(#"{"a":1,"b":2}"#, routes: Self.raw) != base)
    }

    @Test func selectedFieldsAloneEnterTheKey() throws {
        let fields = "  - path: /s\n    methods: [POST]\n    body_key: {fields: [nick_name]}"
        let one = try #require(Self.key(#"{"nick_name":"bob","request_id":1}"#, routes: fields))
        #expect(Self.key(#"{"request_id":2, "nick_name":"bob"}"#, routes: fields) == one)
        #expect(Self.key(#"{"nick_name":"ann","request_id":1}"#, routes: fields) != one)

        let ignore = "  - path: /s\n    methods: [POST]\n    body_key: {ignore: [request_id]}"
        let two = try #require(Self.key(#"{"nick_name":"bob","request_id":1}"#, routes: ignore))
        #expect(Self.key(#"{"request_id":"x","nick_name":"bob"}"#, routes: ignore) == two)
        #expect(Self.key(#"{"nick_name":"bob","page":2}"#, routes: ignore) != two)
    }

    @Test func anEmptyBodyOnAJSONRouteIsLookedUpWithoutADigest() throws {
        #expect(try #require(Self.key("", routes: Self.json)).bodyDigest == nil)
    }

    /// Not JSON (or, with a field selection, not an object): forwarded uncached, never refused.
    @Test(arguments: [
        (json, "nick_name=bob"),
        (json, #"{"a":1,"a":2}"#),
        (json, #"{"a":1"#),
        ("  - path: /s\n    methods: [POST]\n    body_key: {fields: [a]}", "[1, 2]"),
        ("  - path: /s\n    methods: [POST]\n    body_key: {ignore: [a]}", "\"text\""),
    ])
    func aBodyThatIsNotJSONBypassesTheCache(routes: String, body: String) {
        var m = Self.machine("", routes: routes)
        let length = body.utf8.count
        _ = m.requestHead(Self.head("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: \(length)\r\n\r\n"))
        _ = m.requestBody(ByteBuffer(string: body))
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "setTimer upstream", "acquireUpstream"])
        #expect(describe(m.upstreamAcquired(reused: false)) == ["writeUpstream head(POST /s content-length=\(length)) body(\(length)) end"])
        #expect(describe(m.upstreamHead(Self.response(.ok))) == ["setTimer upstream", "writeHead 200 BYPASS body-not-json"])
    }

    @Test func aJSONRoutesBodyTagsComeFromTheParsedBody() throws {
        var m = Self.machine("", routes: "  - path: /s\n    methods: [POST]\n    body_key: json\n    tags: [\"q:{body.q}\"]")
        let body = #"{"q": "shoes", "n": 2}"#
        _ = m.requestHead(Self.head("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: \(body.utf8.count)\r\n\r\n"))
        _ = m.requestBody(ByteBuffer(string: body))
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "lookup 1"])
        _ = m.lookupCompleted(request: 1, .miss, now: 0)
        _ = m.upstreamAcquired(reused: false)
        _ = m.upstreamHead(Self.response(.ok))
        _ = m.upstreamBody(ByteBuffer(string: "[]"))
        #expect(try #require(Self.storeRequest(m.upstreamEnd(now: 1))).entry.tags == ["/s", "q:shoes"])
    }

    // MARK: PURGE

    static let admin = "admin:\n  token: \(token)\n  purge_method: true"
    static let purgeRoutes = "  - path: /c\n  - path: /q\n    query: [a]"

    @Test func purgeWithTheTokenPurgesTheURLAndAnswersJSON() throws {
        var m = Self.machine(Self.admin, routes: Self.purgeRoutes)
        #expect(
            describe(m.requestHead(Self.head("PURGE /q?b=2&a=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(Self.token)\r\n\r\n"))) == [
                "cancelTimer client", "purge url /q?a=1 1",
            ])
        #expect(describe(m.requestEnd()) == [])
        let done = m.purgeCompleted(request: 1, .success(4))
        #expect(
            describe(done) == [
                "writeHead 200 PURGE purged", "writeBody 14", "log PURGE /q?b=2&a=1 200 PURGE", "writeEnd keep-alive", "setTimer client",
            ])
        #expect(Self.writtenBody(done) == "{\"purged\": 4}\n")
        let head = try #require(Self.writtenHead(done))
        #expect(head.headers.first(name: "x-cache") == "PURGE")
        #expect(head.headers.first(name: "content-type") == "application/json")
        #expect(head.headers.first(name: "content-length") == "14")
        #expect(Self.log(done)?.outcome == .purge(removed: 4))
        #expect(m.isIdle)
    }

    @Test(arguments: ["Bearer \(token)", "bearer \(token)", "BEARER  \(token)"])
    func theBearerSchemeIsCaseInsensitive(authorization: String) {
        var m = Self.machine(Self.admin)
        #expect(
            describe(m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\nAuthorization: \(authorization)\r\n\r\n")))
                == ["cancelTimer client", "purge url /c 1"])
    }

    @Test func aSoftPurgeIsAskedWithAHeader() {
        var m = Self.machine(Self.admin)
        #expect(
            describe(
                m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(Self.token)\r\nSoft-Purge: 1\r\n\r\n")))
                == ["cancelTimer client", "purge url /c soft 1"])
    }

    @Test(arguments: [
        nil, "Bearer wrong-token-0123456789", "Bearer \(token)x", "Bearer \(token.dropLast())", "Basic \(token)", "\(token)", "Bearer",
        "Bearer ",
    ])
    func purgeWithoutTheRightTokenIs401AndCloses(authorization: String?) {
        var m = Self.machine(Self.admin)
        let header = authorization.map { "Authorization: \($0)\r\n" } ?? ""
        let actions = m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\n\(header)\r\n"))
        #expect(
            describe(actions) == [
                "warn rejected unauthorized", "writeHead 401 REJECTED", "writeBody \(Self.writtenBody(actions).utf8.count)",
                "log PURGE /c 401 REJECTED", "cancelTimer client", "writeEnd close", "setClientReading false",
            ])
        #expect(Self.writtenBody(actions).contains("PURGE needs Authorization: Bearer <admin token>"))
        #expect(Self.writtenHead(actions)?.headers.first(name: "connection") == "close")
        // Nothing more is read or answered on that connection.
        #expect(describe(m.requestHead(Self.head("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))) == [])
    }

    @Test func aFailedPurgeIs503() throws {
        var m = Self.machine(Self.admin)
        _ = m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(Self.token)\r\n\r\n"))
        let done = m.purgeCompleted(request: 1, .failure(RedisClientError.clientShutdown))
        let body = Self.writtenBody(done)
        #expect(
            describe(done) == [
                "writeHead 503 PURGE purge-failed", "writeBody \(body.utf8.count)", "log PURGE /c 503 PURGE", "writeEnd keep-alive",
                "setTimer client",
            ])
        #expect(body.contains("the purge failed"))
    }

    @Test func withoutPurgeMethodAPurgeRequestIsForwarded() {
        var m = Self.machine("admin:\n  token: \(Self.token)")
        let actions = describe(m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(Self.token)\r\n\r\n")))
        #expect(actions == ["setTimer upstream", "acquireUpstream", "cancelTimer client"])
    }

    /// A purge answered before its request body ended: the rest of the body is read and dropped,
    /// then the next request on the connection runs.
    @Test func aPurgeRequestBodyIsReadAndDroppedBeforeTheNextRequest() {
        var m = Self.machine(Self.admin)
        #expect(
            describe(
                m.requestHead(Self.head("PURGE /c HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \(Self.token)\r\nContent-Length: 6\r\n\r\n"))
            )
                == ["setTimer client", "purge url /c 1"])
        #expect(describe(m.requestBody(ByteBuffer(string: "abc"))) == [])
        #expect(describe(m.purgeCompleted(request: 1, .success(0))).suffix(2) == ["log PURGE /c 200 PURGE", "writeEnd keep-alive"])
        #expect(!m.isIdle)
        #expect(describe(m.requestBody(ByteBuffer(string: "def"))) == [])
        #expect(describe(m.requestEnd()) == ["cancelTimer client", "setTimer client"])
        #expect(m.isIdle)
        #expect(describe(m.requestHead(Self.head("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"))) == ["cancelTimer client"])
        #expect(describe(m.requestEnd()) == ["lookup 2"])
    }
}
