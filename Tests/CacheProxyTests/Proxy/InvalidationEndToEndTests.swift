import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// Two (or more) proxy instances sharing one real redis-server, in front of a stateful users
/// origin, all on loopback.
final class SharedCacheHarness: Sendable {
    static let token = "test-admin-token-0123456789"

    let redis: RedisServer
    let origin: UsersOrigin
    let proxies: [ProxyServer]
    let clients: [TestHTTPClient]
    /// The admin API of each instance.
    let admins: [TestHTTPClient]
    let inspector: RedisClient

    private init(
        redis: RedisServer, origin: UsersOrigin, proxies: [ProxyServer], clients: [TestHTTPClient], admins: [TestHTTPClient],
        inspector: RedisClient
    ) {
        self.redis = redis
        self.origin = origin
        self.proxies = proxies
        self.clients = clients
        self.admins = admins
        self.inspector = inspector
    }

    static let routes = """
        routes:
          - name: all_users
            path: /users/all
          - name: one_user
            path: /users/one
            methods: [POST]
            body_key: {fields: [nick]}
            tags: ["user:{body.nick}"]
          - name: by_nick
            path: /users/by-nick/*
            tags: ["user:{path.3}"]
          - name: tagged
            path: /tagged/*
            ttl: TAGGED_TTL
          - name: private
            path: /private/*
          - name: fallback
            path: /fallback/*
            ttl: 1s
            stale_if_error: 60s
            stale_while_revalidate: 0s
          - name: echo_json
            path: /echo
            methods: [POST]
            body_key: json
          - name: echo_ignore
            path: /echo-ignore
            methods: [POST]
            body_key: {ignore: [request_id]}
        invalidate:
          - path: /users/create
            methods: [POST]
            purge: [all_users]
          - path: /users/edit
            methods: [PUT]
            purge: [all_users, "user:{body.nick}"]
          - path: /users/delete
            methods: [DELETE]
            purge: [all_users, "user:{body.nick}"]
        """

    static func start(instances: Int = 2, users: [String: String] = ["alice": "Alice", "bob": "Bob"], taggedTTL: String = "30s")
        async throws -> SharedCacheHarness
    {
        let redis = try await RedisServer.start()
        let origin = try await UsersOrigin.start(group: ProxyHarness.group, users: users)
        let yaml = """
            listen: 127.0.0.1:0
            upstream: http://127.0.0.1:\(origin.port)
            redis:
              url: redis://127.0.0.1:\(redis.port)/0
              timeout: 2s
            admin:
              listen: 127.0.0.1:0
              token: \(token)
              purge_method: true
            \(routes.replacingOccurrences(of: "TAGGED_TTL", with: taggedTTL))
            """
        let configuration = try ProxyConfiguration.parse(yaml: yaml, file: "shared.yaml")
        var proxies: [ProxyServer] = []
        var clients: [TestHTTPClient] = []
        var admins: [TestHTTPClient] = []
        for _ in 0..<instances {
            let proxy = ProxyServer(configuration: configuration, eventLoopGroup: ProxyHarness.group)
            let address = try await proxy.start()
            proxies.append(proxy)
            // One Host for every instance, as behind a load balancer: the Host is part of the key.
            clients.append(TestHTTPClient(port: address.port!, group: ProxyHarness.group, host: "api.test"))
            admins.append(TestHTTPClient(port: proxy.adminAddress!.port!, group: ProxyHarness.group))
        }
        let inspector = RedisClient(
            configuration: .init(url: redis.url(), commandTimeout: .seconds(10)), eventLoopGroup: ProxyHarness.group)
        return SharedCacheHarness(redis: redis, origin: origin, proxies: proxies, clients: clients, admins: admins, inspector: inspector)
    }

    func stop() async {
        for proxy in proxies { await proxy.shutdown(gracePeriod: .seconds(1)) }
        await inspector.shutdown()
        await origin.stop()
        redis.stop()
    }

    /// Entry keys in Redis.
    func entryCount() async throws -> Int {
        try await inspector.send(RedisCommand("KEYS", ["cache-proxy:v2:*"])).array?.count ?? -1
    }

    func redis(_ arguments: RedisArgument...) async throws -> RedisValue {
        guard let name = arguments.first, case .string(let command) = name.storage else { throw TestFailure("no command") }
        return try await inspector.send(RedisCommand(command, Array(arguments.dropFirst())))
    }

    func purge(_ json: String, on instance: Int = 0, token: String? = SharedCacheHarness.token) async throws -> TestResponse {
        var headers = [("content-type", "application/json")]
        if let token { headers.append(("authorization", "Bearer \(token)")) }
        return try await admins[instance].request(.POST, "/purge", headers: headers, body: ByteBuffer(string: json))
    }
}

func withSharedCache(
    instances: Int = 2, users: [String: String] = ["alice": "Alice", "bob": "Bob"], taggedTTL: String = "30s",
    _ body: (SharedCacheHarness) async throws -> Void
) async throws {
    let harness = try await SharedCacheHarness.start(instances: instances, users: users, taggedTTL: taggedTTL)
    do {
        try await body(harness)
        await harness.stop()
    } catch {
        await harness.stop()
        throw error
    }
}

extension TestHTTPClient {
    func send(_ method: HTTPMethod, _ uri: String, json: String) async throws -> TestResponse {
        try await request(method, uri, headers: [("content-type", "application/json")], body: ByteBuffer(string: json))
    }
}

@Suite(.serialized) struct InvalidationEndToEndTests {
    @Test func aWriteOnOneInstanceIsSeenOnTheOtherAtOnce() async throws {
        try await withSharedCache { h in
            let (a, b) = (h.clients[0], h.clients[1])
            // Warm every read on B.
            for _ in 0..<2 {
                _ = try await b.get("/users/all")
                _ = try await b.send(.POST, "/users/one", json: #"{"nick":"alice"}"#)
                _ = try await b.send(.POST, "/users/one", json: #"{"nick":"bob"}"#)
                _ = try await b.get("/users/by-nick/alice")
            }
            #expect(try await b.get("/users/all").xCache == "HIT")
            #expect(try await b.send(.POST, "/users/one", json: #"{"nick":"alice"}"#).xCache == "HIT")

            // Create on A: the list on B is fresh at once.
            let created = try await a.send(.POST, "/users/create", json: #"{"nick":"carol","name":"Carol"}"#)
            #expect(created.status == .created)
            let list = try await b.get("/users/all")
            #expect(list.xCache == "MISS")
            #expect(list.text.contains("carol"))
            // Alice's entries were not touched by a create.
            #expect(try await b.send(.POST, "/users/one", json: #"{"nick":"alice"}"#).xCache == "HIT")

            // Edit alice on A: her entries and the list go, bob's stay.
            #expect(try await a.send(.PUT, "/users/edit", json: #"{"nick":"alice","name":"Alice 2"}"#).status == .ok)
            let alice = try await b.send(.POST, "/users/one", json: #"{"nick":"alice"}"#)
            #expect(alice.xCache == "MISS")
            #expect(alice.json["version"] as? Int == 2)
            let byNick = try await b.get("/users/by-nick/alice")
            #expect(byNick.xCache == "MISS")
            #expect(byNick.json["name"] as? String == "Alice 2")
            #expect(try await b.get("/users/all").text.contains("Alice 2"))
            #expect(try await b.send(.POST, "/users/one", json: #"{"nick":"bob"}"#).xCache == "HIT")

            // Delete bob on A: gone on B.
            #expect(try await a.send(.DELETE, "/users/delete", json: #"{"nick":"bob"}"#).status == .ok)
            let bob = try await b.send(.POST, "/users/one", json: #"{"nick":"bob"}"#)
            #expect(bob.status == .notFound)
            #expect(!(try await b.get("/users/all").text.contains("bob")))
        }
    }

    @Test func aFailedWriteDoesNotPurge() async throws {
        try await withSharedCache { h in
            let (a, b) = (h.clients[0], h.clients[1])
            _ = try await b.get("/users/all")
            // 404: not a 2xx, so nothing is purged.
            #expect(try await a.send(.PUT, "/users/edit", json: #"{"nick":"nobody","name":"x"}"#).status == .notFound)
            #expect(try await b.get("/users/all").xCache == "HIT")
        }
    }

    @Test func purgeAPIRemovesExactlyWhatItNames() async throws {
        try await withSharedCache { h in
            let a = h.clients[0]
            _ = try await a.get("/users/all")
            _ = try await a.send(.POST, "/users/one", json: #"{"nick":"alice"}"#)
            _ = try await a.send(.POST, "/users/one", json: #"{"nick":"bob"}"#)
            _ = try await a.get("/users/by-nick/alice")
            _ = try await a.get("/users/by-nick/bob")
            _ = try await a.get("/tagged/x?keys=k1+k2")
            _ = try await a.get("/tagged/y?keys=k2")
            #expect(try await h.entryCount() == 7)

            // By tag (from the origin's Surrogate-Key), on the other instance's admin API.
            var reply = try await h.purge(#"{"tags": ["k1"]}"#, on: 1)
            #expect(reply.status == .ok)
            #expect(reply.json["purged"] as? Int == 1)
            #expect(try await h.entryCount() == 6)
            #expect(try await a.get("/tagged/y?keys=k2").xCache == "HIT")

            // A data tag: alice's two entries, nothing of bob's.
            reply = try await h.purge(#"{"tags": ["user:alice"]}"#)
            #expect(reply.json["purged"] as? Int == 2)
            #expect(try await h.entryCount() == 4)
            #expect(try await a.get("/users/by-nick/bob").xCache == "HIT")

            // By route name.
            reply = try await h.purge(#"{"route": "one_user"}"#)
            #expect(reply.json["purged"] as? Int == 1)  // bob's; alice's went above
            #expect(try await h.entryCount() == 3)

            // By URL: every variant of it.
            reply = try await h.purge(#"{"url": "/users/by-nick/bob"}"#)
            #expect(reply.json["purged"] as? Int == 1)
            #expect(try await h.entryCount() == 2)

            // By prefix.
            reply = try await h.purge(#"{"prefix": "/tagged/"}"#)
            #expect(reply.json["purged"] as? Int == 1)
            #expect(try await h.entryCount() == 1)
            #expect(try await a.get("/users/all").xCache == "HIT")

            // Soft: kept in Redis, but refetched (and stored again) on the next request.
            reply = try await h.purge(#"{"route": "all_users", "soft": true}"#)
            #expect(reply.json["purged"] as? Int == 1)
            #expect(try await h.entryCount() == 1)
            let refetched = try await a.get("/users/all")
            #expect(refetched.xCache == "MISS")
            #expect(refetched.cacheStatus == "cache-proxy; fwd=stale; stored")
            #expect(try await a.get("/users/all").xCache == "HIT")
        }
    }

    @Test func adminAndPurgeMethodNeedTheToken() async throws {
        try await withSharedCache { h in
            _ = try await h.clients[0].get("/users/by-nick/alice")
            var reply = try await h.purge(#"{"route": "by_nick"}"#, token: nil)
            #expect(reply.status == .unauthorized)
            #expect(reply.headers.first(name: "www-authenticate") == "Bearer")
            reply = try await h.purge(#"{"route": "by_nick"}"#, token: "test-admin-token-0123456788")
            #expect(reply.status == .unauthorized)
            #expect(try await h.entryCount() == 1)
            reply = try await h.purge(#"{"route": "nope"}"#)
            #expect(reply.status == .badRequest)
            reply = try await h.purge(#"{"tags": ["a"], "route": "by_nick"}"#)
            #expect(reply.status == .badRequest)
            reply = try await h.purge("not json")
            #expect(reply.status == .badRequest)

            // PURGE on the main listener.
            var purge = try await h.clients[1].request(HTTPMethod(rawValue: "PURGE"), "/users/by-nick/alice")
            #expect(purge.status == .unauthorized)
            #expect(try await h.entryCount() == 1)
            purge = try await h.clients[1].request(
                HTTPMethod(rawValue: "PURGE"), "/users/by-nick/alice", headers: [("authorization", "Bearer \(SharedCacheHarness.token)")])
            #expect(purge.status == .ok)
            #expect(purge.json["purged"] as? Int == 1)
            #expect(purge.xCache == "PURGE")
            #expect(try await h.entryCount() == 0)
            #expect(h.origin.count("/users/by-nick/alice") == 1)  // PURGE never reaches the origin
        }
    }

    @Test func aFetchThatStartedBeforeAPurgeIsNotStored() async throws {
        try await withSharedCache { h in
            let (a, b) = (h.clients[0], h.clients[1])
            let release = h.origin.hold("/users/all", on: ProxyHarness.group.next())
            async let slowRead = a.get("/users/all")
            // Wait until the origin has read the pre-write list (bounded: 5 s).
            let deadline = Date().addingTimeInterval(5)
            while !h.origin.hasRead("/users/all"), Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(h.origin.hasRead("/users/all"))
            // The write and its purge complete while that read is still in flight.
            #expect(try await b.send(.PUT, "/users/edit", json: #"{"nick":"alice","name":"Alice 2"}"#).status == .ok)
            release.succeed()
            let old = try await slowRead
            #expect(old.text.contains("\"Alice\""))  // the pre-write answer, served to its own client
            #expect(old.cacheStatus == "cache-proxy; fwd=uri-miss; detail=purged")
            #expect(try await h.entryCount() == 0)
            let next = try await a.get("/users/all")
            #expect(next.xCache == "MISS")
            #expect(next.text.contains("Alice 2"))
            #expect(try await b.get("/users/all").xCache == "HIT")
        }
    }

    @Test func originTagsAreStoredStrippedAndPurgeable() async throws {
        try await withSharedCache { h in
            let first = try await h.clients[0].get("/tagged/a?keys=red+blue")
            #expect(first.headers.first(name: "surrogate-key") == nil)
            #expect(first.cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            let hit = try await h.clients[1].get("/tagged/a?keys=red+blue")
            #expect(hit.xCache == "HIT")
            #expect(hit.headers.first(name: "surrogate-key") == nil)
            #expect(try await h.redis("ZCARD", "cache-proxy:i:t:red").integer == 1)
            #expect(try await h.redis("ZCARD", "cache-proxy:i:t:tagged").integer == 1)
            let reply = try await h.purge(#"{"tags": ["blue"]}"#)
            #expect(reply.json["purged"] as? Int == 1)
            #expect(try await h.clients[1].get("/tagged/a?keys=red+blue").xCache == "MISS")
        }
    }

    /// Scripts run with EVALSHA; after a Redis restart or `SCRIPT FLUSH` they are sent again.
    @Test func scriptsSurviveAScriptFlush() async throws {
        try await withSharedCache { h in
            #expect(try await h.clients[0].get("/tagged/a?keys=k").cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            _ = try await h.redis("SCRIPT", "FLUSH")
            #expect(try await h.clients[0].get("/tagged/b?keys=k").cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            _ = try await h.redis("SCRIPT", "FLUSH")
            #expect(try await h.purge(#"{"tags": ["k"]}"#).json["purged"] as? Int == 2)
        }
    }

    @Test func canonicalJSONBodiesShareEntries() async throws {
        try await withSharedCache { h in
            let a = h.clients[0]
            #expect(try await a.send(.POST, "/echo", json: #"{"a":1,"b":[1,2],"s":"\u00e9"}"#).xCache == "MISS")
            let same = try await a.send(.POST, "/echo", json: "{ \"s\": \"é\",\n \"b\": [1, 2], \"a\": 1.0 }")
            #expect(same.xCache == "HIT")
            #expect(try await a.send(.POST, "/echo", json: #"{"a":2,"b":[1,2],"s":"é"}"#).xCache == "MISS")

            let broken = try await a.send(.POST, "/echo", json: #"{"a":"#)
            #expect(broken.status == .ok)
            #expect(broken.xCache == "BYPASS")
            #expect(broken.cacheStatus == "cache-proxy; fwd=bypass; detail=body-not-json")
            #expect(broken.json["body"] as? String == #"{"a":"#)

            // fields: only nick enters the key.
            #expect(try await a.send(.POST, "/users/one", json: #"{"nick":"alice"}"#).xCache == "MISS")
            #expect(try await a.send(.POST, "/users/one", json: #"{ "trace": 7, "nick" : "alice" }"#).xCache == "HIT")
            #expect(try await a.send(.POST, "/users/one", json: #"["alice"]"#).xCache == "BYPASS")

            // ignore: everything but request_id.
            #expect(try await a.send(.POST, "/echo-ignore", json: #"{"q":"x","request_id":"1"}"#).xCache == "MISS")
            #expect(try await a.send(.POST, "/echo-ignore", json: #"{"request_id":"2","q":"x"}"#).xCache == "HIT")
            #expect(try await a.send(.POST, "/echo-ignore", json: #"{"request_id":"2","q":"y"}"#).xCache == "MISS")
        }
    }

    @Test func theIndexForgetsExpiredEntries() async throws {
        try await withSharedCache(taggedTTL: "2s") { h in
            let started = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        let response = try await h.clients[index % 2].get("/tagged/n\(index)?keys=common")
                        #expect(response.cacheStatus == "cache-proxy; fwd=uri-miss; stored")
                    }
                }
                try await group.waitForAll()
            }
            if Date().timeIntervalSince(started) < 1.5 {  // none expired yet (a loaded machine may be slower)
                #expect(try await h.redis("ZCARD", "cache-proxy:i:t:common").integer == 50)
                #expect(try await h.redis("ZCARD", "cache-proxy:urls").integer == 50)
            }
            try await Task.sleep(for: .milliseconds(2200))
            _ = try await h.clients[0].get("/tagged/last?keys=common")
            // The store trimmed the tag's expired members, and (up to 64) expired URLs.
            #expect(try await h.redis("ZCARD", "cache-proxy:i:t:common").integer == 1)
            #expect(try await h.redis("ZCARD", "cache-proxy:urls").integer == 1)
            let ttl = try await h.redis("PTTL", "cache-proxy:i:t:common").integer ?? -1
            #expect(ttl > 0 && ttl <= 2000)
            // And every index goes with its last entry.
            try await Task.sleep(for: .milliseconds(2200))
            for key in ["i:t:common", "i:t:tagged", "urls", "expiry"] {
                #expect(try await h.redis("EXISTS", .string("cache-proxy:" + key)).integer == 0, "\(key)")
            }
        }
    }

    /// Readers hammer instance A while instance B edits alice again and again: no read that
    /// starts after an edit returned may see an older version.
    @Test func noPurgedEntryIsServedAfterThePurgeReturned() async throws {
        try await withSharedCache { h in
            let (a, b) = (h.clients[0], h.clients[1])
            let edits = Edits()
            let stop = Date().addingTimeInterval(15)
            try await withThrowingTaskGroup(of: [String].self) { group in
                for reader in 0..<4 {
                    group.addTask {
                        var violations: [String] = []
                        var reads = 0
                        while await !edits.finished, Date() < stop {
                            let floor = await edits.latestVersion
                            let response =
                                reader % 2 == 0
                                ? try await a.send(.POST, "/users/one", json: #"{"nick":"alice"}"#)
                                : try await a.get("/users/by-nick/alice")
                            let version = response.json["version"] as? Int ?? -1
                            if version < floor {
                                violations.append("read v\(version) after v\(floor) returned (\(response.xCache ?? "-"))")
                            }
                            reads += 1
                        }
                        return violations + (reads > 0 ? [] : ["reader \(reader) made no request"])
                    }
                }
                group.addTask {
                    for _ in 0..<25 {
                        let response = try await b.send(.PUT, "/users/edit", json: #"{"nick":"alice","name":"x"}"#)
                        await edits.returned(version: response.json["version"] as? Int ?? 0)
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    await edits.finish()
                    return []
                }
                var violations: [String] = []
                for try await found in group { violations += found }
                let count = violations.count
                #expect(count == 0, "\(Array(violations.prefix(5)))")
            }
            #expect(await edits.latestVersion == 26)
        }
    }
    /// The same with the admin API: readers on A, purges on B. A read that starts after a purge
    /// returned must come from an origin fetch made after that purge began.
    @Test func noEntryIsServedAfterItsAdminPurgeReturned() async throws {
        try await withSharedCache { h in
            let a = h.clients[0]
            let purges = Edits(latestVersion: 0)  // the origin's count when the last returned purge began
            let stop = Date().addingTimeInterval(15)
            try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var violations: [String] = []
                        while await !purges.finished, Date() < stop {
                            let floor = await purges.latestVersion
                            let response = try await a.get("/tagged/hot?keys=hot")
                            let count = response.json["count"] as? Int ?? -1
                            if count <= floor { violations.append("served fetch #\(count) after a purge that began at #\(floor)") }
                        }
                        return violations
                    }
                }
                group.addTask {
                    for _ in 0..<30 {
                        try await Task.sleep(for: .milliseconds(15))
                        let before = h.origin.count("/tagged/hot")
                        let reply = try await h.purge(#"{"tags": ["hot"]}"#, on: 1)
                        guard reply.status == .ok else { return ["purge answered \(reply.status)"] }
                        await purges.returned(version: before)
                    }
                    await purges.finish()
                    return []
                }
                var violations: [String] = []
                for try await found in group { violations += found }
                let count = violations.count
                #expect(count == 0, "\(Array(violations.prefix(5)))")
            }
            #expect(h.origin.count("/tagged/hot") > 30)  // the purges did force refetches
        }
    }

}

private actor Edits {
    var latestVersion: Int
    init(latestVersion: Int = 1) { self.latestVersion = latestVersion }
    var finished = false
    func returned(version: Int) { latestVersion = max(latestVersion, version) }
    func finish() { finished = true }
}
