import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// The proxy between a real origin and a real redis-server, over loopback HTTP. Serialized:
/// each test runs a whole stack, and timeouts are part of what some of them check.
@Suite(.serialized) struct ProxyEndToEndTests {
    @Test func missThenHitThenExpiry() async throws {
        try await withProxy(
            routes: """
                  - path: /items/*
                    ttl: 30s
                """
        ) { h throws in
            let first = try await h.client.get("/items/1")
            #expect(first.status == .ok)
            #expect(first.xCache == "MISS")
            #expect(first.cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            #expect(first.json["count"] as? Int == 1)

            h.clock.advance(by: .seconds(12))
            let second = try await h.client.get("/items/1")
            #expect(second.xCache == "HIT")
            #expect(second.body == first.body)
            #expect(second.headers.first(name: "age") == "12")
            #expect(second.cacheStatus == "cache-proxy; hit; ttl=18")
            #expect(second.headers.first(name: "content-type") == "application/json")
            #expect(h.origin.count("/items/1") == 1)

            // Redis keeps the key for the TTL too (PX), checked here directly.
            let redis = RedisClient(
                configuration: .init(url: h.redis.url(), commandTimeout: .seconds(10)), eventLoopGroup: ProxyHarness.group)
            let keys = try await redis.send(RedisCommand("KEYS", ["cache-proxy:v2:*"]))
            #expect(keys.array?.count == 1)
            let ttl = try await redis.send(RedisCommand("PTTL", [.bytes(keys.array![0].bytes!)])).integer ?? 0
            #expect(ttl > 25_000 && ttl <= 30_000)
            await redis.shutdown()

            h.clock.advance(by: .seconds(19))
            let third = try await h.client.get("/items/1")
            #expect(third.xCache == "MISS")
            #expect(third.cacheStatus == "cache-proxy; fwd=stale; stored")  // found in Redis, past its TTL
            #expect(third.json["count"] as? Int == 2)
            #expect(h.origin.count("/items/1") == 2)
            #expect(try await h.client.get("/items/1").xCache == "HIT")
        }
    }

    @Test func queryOrderAndEncodingAreNormalized() async throws {
        try await withProxy(
            routes: """
                  - path: /search
                  - path: /orders/**
                    query: [user_id]
                """
        ) { h throws in
            #expect(try await h.client.get("/search?b=2&a=1").xCache == "MISS")
            #expect(try await h.client.get("/search?a=1&b=2").xCache == "HIT")
            #expect(try await h.client.get("/search?a=%31&b=2").xCache == "HIT")
            #expect(try await h.client.get("/search?a=1&b=3").xCache == "MISS")
            #expect(try await h.client.get("/search?q=a+b").xCache == "MISS")
            #expect(try await h.client.get("/search?q=a%20b").xCache == "HIT")
            #expect(h.origin.count("/search") == 3)

            // Only user_id enters the key on this route.
            #expect(try await h.client.get("/orders/list?user_id=7&utm=x").xCache == "MISS")
            #expect(try await h.client.get("/orders/list?utm=y&user_id=7").xCache == "HIT")
            #expect(try await h.client.get("/orders/list?user_id=8").xCache == "MISS")
        }
    }

    @Test func postBodiesGetTheirOwnAnswers() async throws {
        // The reference API's bug: POST /user/show_one_user/ for user B returned user A.
        try await withProxy(
            routes: """
                  - path: /user/show_one_user/
                    methods: [POST]
                """
        ) { h throws in
            let a = try await h.client.post("/user/show_one_user/", json: #"{"nick_name": "alice"}"#)
            #expect(a.xCache == "MISS")
            #expect(a.json["body"] as? String == #"{"nick_name": "alice"}"#)
            let b = try await h.client.post("/user/show_one_user/", json: #"{"nick_name": "bob"}"#)
            #expect(b.xCache == "MISS")
            #expect(b.json["body"] as? String == #"{"nick_name": "bob"}"#)
            let a2 = try await h.client.post("/user/show_one_user/", json: #"{"nick_name": "alice"}"#)
            #expect(a2.xCache == "HIT")
            #expect(a2.json["body"] as? String == #"{"nick_name": "alice"}"#)
            let b2 = try await h.client.post("/user/show_one_user/", json: #"{"nick_name": "bob"}"#)
            #expect(b2.xCache == "HIT")
            #expect(b2.json["body"] as? String == #"{"nick_name": "bob"}"#)
            #expect(h.origin.count("/user/show_one_user/") == 2)
            // A GET to the POST-only route is forwarded.
            #expect(try await h.client.get("/user/show_one_user/").cacheStatus == "cache-proxy; fwd=bypass; detail=method")
        }
    }

    @Test func getWithJSONBodyIsKeyedOnTheBody() async throws {
        try await withProxy(
            routes: """
                  - path: /order/list_per_users/
                """
        ) { h throws in
            let a = try await h.client.get(
                "/order/list_per_users/", headers: [("content-type", "application/json")], body: #"{"nick_name": "alice"}"#)
            let b = try await h.client.get(
                "/order/list_per_users/", headers: [("content-type", "application/json")], body: #"{"nick_name": "bob"}"#)
            #expect(a.xCache == "MISS")
            #expect(b.xCache == "MISS")
            #expect(b.json["body"] as? String == #"{"nick_name": "bob"}"#)
            let a2 = try await h.client.get(
                "/order/list_per_users/", headers: [("content-type", "application/json")], body: #"{"nick_name": "alice"}"#)
            #expect(a2.xCache == "HIT")
            #expect(a2.json["body"] as? String == #"{"nick_name": "alice"}"#)
            let none = try await h.client.get("/order/list_per_users/")
            #expect(none.xCache == "MISS")
            #expect(none.json["body"] as? String == "")
        }
    }

    @Test func uncachedRoutesAndWritesAreForwardedEveryTimeWithTheirBodies() async throws {
        try await withProxy(
            routes: """
                  - path: /cached
                """
        ) { h throws in
            for round in 1...2 {
                let plain = try await h.client.get("/other")
                #expect(plain.xCache == "BYPASS")
                #expect(plain.cacheStatus == "cache-proxy; fwd=bypass; detail=no-route")
                #expect(plain.json["count"] as? Int == round)
                for method in [HTTPMethod.PUT, .DELETE, .PATCH, .POST, .RAW(value: "PURGE")] {
                    let response = try await h.client.request(
                        method, "/cached", body: ByteBuffer(string: "payload-\(method.rawValue)-\(round)"))
                    #expect(response.xCache == "BYPASS")
                    #expect(response.json["method"] as? String == method.rawValue)
                    #expect(response.json["body"] as? String == "payload-\(method.rawValue)-\(round)")
                }
            }
            #expect(h.origin.count("/cached") == 10)
        }
    }

    @Test(arguments: [("/set-cookie/x", "set-cookie"), ("/no-store/x", "no-store"), ("/private/x", "private"), ("/status/404", "status")])
    func responsesThatMustNotBeStoredAreNot(path: String, reason: String) async throws {
        try await withProxy(
            routes: """
                  - path: /**
                """
        ) { h throws in
            let first = try await h.client.get(path)
            #expect(first.xCache == "MISS")
            #expect(first.cacheStatus == "cache-proxy; fwd=uri-miss; detail=\(reason)")
            let second = try await h.client.get(path)
            #expect(second.xCache == "MISS")
            #expect(h.origin.count(path) == 2)
        }
    }

    @Test func credentialsBypassUnlessVaried() async throws {
        try await withProxy(
            routes: """
                  - path: /private-by-user
                    vary: [Authorization]
                  - path: /plain
                """
        ) { h throws in
            let bypassed = try await h.client.get("/plain", headers: [("authorization", "Bearer alice")])
            #expect(bypassed.xCache == "BYPASS")
            #expect(bypassed.cacheStatus == "cache-proxy; fwd=bypass; detail=authorization")
            #expect(try await h.client.get("/plain", headers: [("authorization", "Bearer alice")]).xCache == "BYPASS")
            #expect(
                try await h.client.get("/plain", headers: [("cookie", "session=1")]).cacheStatus == "cache-proxy; fwd=bypass; detail=cookie"
            )
            #expect(h.origin.count("/plain") == 3)

            let alice = try await h.client.get("/private-by-user", headers: [("authorization", "Bearer alice")])
            #expect(alice.xCache == "MISS")
            let bob = try await h.client.get("/private-by-user", headers: [("authorization", "Bearer bob")])
            #expect(bob.xCache == "MISS")
            #expect(bob.json["authorization"] as? String == "Bearer bob")
            let alice2 = try await h.client.get("/private-by-user", headers: [("authorization", "Bearer alice")])
            #expect(alice2.xCache == "HIT")
            #expect(alice2.json["authorization"] as? String == "Bearer alice")
            let anonymous = try await h.client.get("/private-by-user")
            #expect(anonymous.xCache == "MISS")
            #expect(anonymous.json["authorization"] as? String == "")
        }
    }

    @Test func varyHeadersSplitEntries() async throws {
        try await withProxy(
            routes: """
                  - path: /greeting
                    vary: [Accept-Language]
                """
        ) { h throws in
            #expect(try await h.client.get("/greeting", headers: [("accept-language", "pt-BR")]).xCache == "MISS")
            #expect(try await h.client.get("/greeting", headers: [("accept-language", "en")]).xCache == "MISS")
            let pt = try await h.client.get("/greeting", headers: [("accept-language", "pt-BR")])
            #expect(pt.xCache == "HIT")
            #expect(pt.json["language"] as? String == "pt-BR")
        }
    }

    @Test func listedStatusesAreStored() async throws {
        try await withProxy(
            routes: """
                  - path: /status/*
                    statuses: [200, 404]
                """
        ) { h throws in
            #expect(try await h.client.get("/status/404").xCache == "MISS")
            let again = try await h.client.get("/status/404")
            #expect(again.xCache == "HIT")
            #expect(again.status == .notFound)
        }
    }

    @Test func binaryBodiesAreIntact() async throws {
        try await withProxy(
            routes: """
                  - path: /binary
                """
        ) { h throws in
            let expected = ByteBuffer(bytes: Array(repeating: (0...255).map { UInt8($0) }, count: 4).flatMap { $0 })
            let miss = try await h.client.get("/binary")
            let hit = try await h.client.get("/binary")
            #expect(miss.xCache == "MISS")
            #expect(hit.xCache == "HIT")
            #expect(miss.body == expected)
            #expect(hit.body == expected)
            #expect(hit.headers.first(name: "content-type") == "application/octet-stream")
        }
    }

    @Test(arguments: ["", "?chunked=1"])
    func responsesOverTheLimitStreamAndAreNotStored(query: String) async throws {
        try await withProxy(
            routes: """
                  - path: /large/*
                    max_body_bytes: 100000
                """
        ) { h throws in
            let first = try await h.client.get("/large/3000000\(query)")
            #expect(first.status == .ok)
            #expect(first.body.readableBytes == 3_000_000)
            #expect(first.body.readableBytesView.enumerated().allSatisfy { $0.element == UInt8(truncatingIfNeeded: $0.offset &* 31 &+ 7) })
            #expect(first.cacheStatus == "cache-proxy; fwd=uri-miss; detail=too-large")
            let second = try await h.client.get("/large/3000000\(query)")
            #expect(second.xCache == "MISS")
            #expect(h.origin.count("/large/3000000") == 2)
            // Under the limit, chunked or not, it is stored.
            #expect(try await h.client.get("/large/5000\(query)").xCache == "MISS")
            let small = try await h.client.get("/large/5000\(query)")
            #expect(small.xCache == "HIT")
            #expect(small.body.readableBytes == 5000)
        }
    }

    @Test func largeUploadsAndDownloadsStreamThroughUncachedRoutes() async throws {
        try await withProxy(
            routes: """
                  - path: /cached-only-here
                """
        ) { h throws in
            let size = 8 << 20
            var body = ByteBuffer()
            body.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131) })
            var sum: UInt64 = 0
            for byte in body.readableBytesView { sum = sum &* 31 &+ UInt64(byte) }
            let upload = try await h.client.request(.PUT, "/upload", body: body)
            #expect(upload.json["received"] as? Int == size)
            #expect((upload.json["sum"] as? NSNumber)?.uint64Value == sum)
            let download = try await h.client.get("/large/\(size)?chunked=1")
            #expect(download.body.readableBytes == size)
        }
    }

    @Test func headIsAnsweredFromTheGetEntry() async throws {
        try await withProxy(
            routes: """
                  - path: /doc
                """
        ) { h throws in
            let head = try await h.client.request(.HEAD, "/doc")
            #expect(head.xCache == "MISS")
            #expect(head.cacheStatus == "cache-proxy; fwd=uri-miss; detail=head")
            let get = try await h.client.get("/doc")
            #expect(get.xCache == "MISS")
            let head2 = try await h.client.request(.HEAD, "/doc")
            #expect(head2.xCache == "HIT")
            #expect(head2.body.readableBytes == 0)
            #expect(head2.headers.first(name: "content-length") == "\(get.body.readableBytes)")
            #expect(h.origin.count("/doc") == 2)
        }
    }

    @Test func redisKilledMidTestThenRestartedResumesCaching() async throws {
        try await withProxy(
            routes: """
                  - path: /r
                """
        ) { h throws in
            #expect(try await h.client.get("/r").xCache == "MISS")
            #expect(try await h.client.get("/r").xCache == "HIT")
            h.redis.stop()
            for _ in 0..<5 {
                let response = try await h.client.get("/r")
                #expect(response.status == .ok)
                #expect(response.xCache == "BYPASS")
                #expect(response.cacheStatus == "cache-proxy; fwd=bypass; detail=redis-unavailable")
            }
            try await h.restartRedis()
            var statuses: [String] = []
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, statuses.last != "HIT" {
                let response = try await h.client.get("/r")
                #expect(response.status == .ok)
                statuses.append(response.xCache ?? "")
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(statuses.last == "HIT")
            #expect(statuses.contains("MISS"))  // the restarted Redis was empty
        }
    }

    @Test func redisDownAtStartupStillServes() async throws {
        let deadPort = try freeLoopbackPort()
        let origin = try await TestOrigin.start(group: ProxyHarness.group)
        let configuration = try ProxyConfiguration.parse(
            yaml: """
                listen: 127.0.0.1:0
                upstream: http://127.0.0.1:\(origin.port)
                redis:
                  url: redis://127.0.0.1:\(deadPort)/0
                routes:
                  - path: /x
                """, file: "test.yaml")
        let proxy = ProxyServer(configuration: configuration, eventLoopGroup: ProxyHarness.group)
        let address = try await proxy.start()
        let client = TestHTTPClient(port: address.port!, group: ProxyHarness.group)
        for _ in 0..<3 {
            let response = try await client.get("/x")
            #expect(response.status == .ok)
            #expect(response.xCache == "BYPASS")
        }
        await proxy.shutdown(gracePeriod: .seconds(1))
        await origin.stop()
    }

    @Test func upstreamDownIs502WithJSON() async throws {
        let deadPort = try freeLoopbackPort()
        // errors.detail: true puts the upstream's address and the error text in the body.
        try await withProxy(routes: "  - path: /x", extra: "errors:\n  detail: true", upstreamPort: deadPort) { h throws in
            for path in ["/x", "/y"] {
                let response = try await h.client.get(path)
                #expect(response.status == .badGateway)
                #expect(response.headers.first(name: "content-type") == "application/json")
                #expect((response.json["error"] as? String)?.contains("cannot connect") == true)
                #expect(response.json["upstream"] as? String == "http://127.0.0.1:\(deadPort)")
            }
        }
    }

    @Test func errorBodiesNameTheRouteNotTheUpstream() async throws {
        let deadPort = try freeLoopbackPort()
        try await withProxy(routes: "  - path: /x\n    name: things", upstreamPort: deadPort) { h throws in
            let response = try await h.client.get("/x")
            #expect(response.status == .badGateway)
            #expect(response.json["error"] as? String == "cannot connect to the upstream")
            #expect(response.json["route"] as? String == "things")
            #expect(response.json["upstream"] == nil)
            #expect(!response.text.contains("127.0.0.1") && !response.text.contains("refused"))
            let unrouted = try await h.client.get("/elsewhere")
            #expect(unrouted.json.keys.contains("route") && !(unrouted.json["route"] is String))
        }
    }

    @Test func upstreamConnectionsAreCappedPerLoopAndTheRestGet503() async throws {
        try await withProxy(routes: "  - path: /none", extra: "upstream_max_connections: 1\nupstream_max_waiting: 0") { h throws in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponseStatus.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await h.client.get("/slow/500").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Two loops, one connection each: at most two are served, the others are refused at once.
            #expect(statuses.filter { $0 == .ok }.count >= 1)
            #expect(statuses.filter { $0 == .ok }.count <= 2)
            #expect(statuses.filter { $0 == .serviceUnavailable }.count >= 4)
            let refused = try await h.client.get("/fast")
            #expect(refused.status == .ok)  // nothing is stuck
        }
        try await withProxy(routes: "  - path: /none", extra: "upstream_max_connections: 1\nupstream_max_waiting: 10") { h throws in
            let statuses = try await withThrowingTaskGroup(of: HTTPResponseStatus.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await h.client.get("/slow/100").status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .ok })  // they waited their turn
        }
    }

    @Test func anUpstreamThatStallsMidBodyIsAbandoned() async throws {
        try await withProxy(routes: "  - path: /stall/cached", extra: "upstream_read_timeout: 500ms") { h throws in
            // Streaming (uncached): the client has the head, so the connection is cut.
            let start = Date()
            await #expect(throws: (any Error).self) { _ = try await h.client.get("/stall/streamed") }
            #expect(Date().timeIntervalSince(start) < 5)
            // Buffered for the cache: nothing was sent yet, so the client gets a 504.
            let cached = try await h.client.get("/stall/cached")
            #expect(cached.status == .gatewayTimeout)
            #expect(cached.cacheStatus == "cache-proxy; fwd=uri-miss; detail=upstream-failed")
        }
    }

    @Test func slowUpstreamIs504() async throws {
        try await withProxy(routes: "  - path: /none", extra: "upstream_timeout: 1s") { h throws in
            let response = try await h.client.get("/slow/4000")
            #expect(response.status == .gatewayTimeout)
            #expect((response.json["error"] as? String)?.contains("did not answer within 1s") == true)
            // A fast request right after is fine.
            let fast = try await h.client.get("/fast")
            #expect(fast.status == .ok)
        }
    }

    @Test func upstreamClosingWithoutAnswerIs502() async throws {
        try await withProxy(routes: "  - path: /none") { h throws in
            let response = try await h.client.get("/close")
            #expect(response.status == .badGateway)
        }
    }

    @Test func upstreamClosingPooledConnectionsIsRetriedTransparently() async throws {
        try await withProxy(routes: "  - path: /none") { h throws in
            for round in 1...10 {
                let response = try await h.client.request(.PUT, "/flaky", body: ByteBuffer(string: "round \(round)"))
                #expect(response.status == .ok)
                #expect(response.json["body"] as? String == "round \(round)")
            }
            #expect(h.origin.count("/flaky") == 10)
        }
    }

    @Test func expectContinueIsAnsweredByTheProxy() async throws {
        try await withProxy(routes: "  - path: /none") { h throws in
            let head = "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
            let interim = try rawExchange(
                port: h.client.port, send: head, until: { $0.contains("\r\n\r\n") }, timeout: 5, thenSend: "hello")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
            #expect(interim.contains("HTTP/1.1 200 OK"))
            #expect(interim.contains(#""body":"hello""#))
            #expect(h.origin.headers("/e")?.first(name: "expect") == nil)
        }
    }

    @Test func idleKeepAliveConnectionsAreClosedButBusyOnesAreNot() async throws {
        try await withProxy(routes: "  - path: /none", clientIdleTimeout: .milliseconds(300)) { h throws in
            // Idle after one answered request: closed by the proxy (the read ends at EOF).
            let start = Date()
            let idle = try rawExchange(port: h.client.port, send: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", until: { _ in false }, timeout: 10)
            #expect(idle.hasPrefix("HTTP/1.1 200 OK"))
            #expect(Date().timeIntervalSince(start) < 9)
            // Waiting 1.5 s on a slow upstream, longer than the idle timeout: still answered.
            let busy = try rawExchange(
                port: h.client.port, send: "GET /slow/1500 HTTP/1.1\r\nHost: x\r\n\r\n", until: { $0.contains("slow-done") }, timeout: 10)
            #expect(busy.hasPrefix("HTTP/1.1 200 OK"))
        }
    }

    @Test func forwardedHeadersAreAddedAndHopByHopRemoved() async throws {
        try await withProxy(routes: "  - path: /none") { h throws in
            _ = try await h.client.get(
                "/hdr",
                headers: [
                    ("connection", "keep-alive, x-drop"), ("x-drop", "1"), ("keep-alive", "timeout=5"), ("x-keep", "yes"),
                    ("x-forwarded-for", "10.0.0.1"),
                ])
            let seen = try #require(h.origin.headers("/hdr"))
            #expect(seen.first(name: "x-keep") == "yes")
            #expect(seen.first(name: "x-drop") == nil)
            #expect(seen.first(name: "keep-alive") == nil)
            // The client's X-Forwarded-For is not passed on: the proxy sets its own.
            #expect(seen.first(name: "x-forwarded-for") == "127.0.0.1")
            #expect(seen.first(name: "forwarded") == "for=127.0.0.1;host=\"127.0.0.1:\(h.client.port)\";proto=http")
            #expect(seen.first(name: "x-forwarded-proto") == "http")
            #expect(seen.first(name: "x-forwarded-host") == "127.0.0.1:\(h.client.port)")
            #expect(seen.first(name: "host") == "127.0.0.1:\(h.client.port)")  // preserve_host: true
        }
    }

    @Test func malformedRequestsGet400() async throws {
        try await withProxy(routes: "  - path: /none") { h throws in
            let reply = try rawExchange(port: h.client.port, send: "THIS IS NOT HTTP\r\n\r\n", until: { $0.contains("\r\n\r\n") })
            #expect(reply.hasPrefix("HTTP/1.1 400"))
            // The proxy is still fine.
            #expect(try await h.client.get("/ok").status == .ok)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withProxy(routes: "  - path: /p/*") { h throws in
            // Cached and uncached requests, with and without bodies, sent in one go.
            let requests = [
                "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /e/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                "GET /p/3 HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /p/1 HTTP/1.1\r\nHost: x\r\n\r\n",
                "PUT /e/5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                "GET /p/6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ].joined()
            let reply = try rawExchange(port: h.client.port, send: requests, until: { _ in false })
            let paths = reply.matches(of: /"path":"(\/[pe]\/\d)"/).map { String($0.1) }
            #expect(paths == ["/p/1", "/e/2", "/p/3", "/p/1", "/e/5", "/p/6"])
            #expect(reply.matches(of: /x-cache: (\w+)/).map { String($0.1) } == ["MISS", "BYPASS", "MISS", "HIT", "BYPASS", "MISS"])
            #expect(reply.contains(#""body":"hello""#))
            #expect(reply.contains(#""body":"abc""#))
        }
    }

    @Test func aThousandConcurrentConnections() async throws {
        try await withProxy(routes: "  - path: /hot") { h throws in
            _ = try await h.client.get("/hot")
            let results = try await withThrowingTaskGroup(of: (HTTPResponseStatus, String?).self) { group in
                for index in 0..<1000 {
                    group.addTask {
                        let response = try await h.client.get(index.isMultiple(of: 2) ? "/hot" : "/cold")
                        return (response.status, response.xCache)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == 1000)
            #expect(results.allSatisfy { $0.0 == .ok })
            #expect(results.filter { $0.1 == "HIT" }.count == 500)
        }
    }
}
