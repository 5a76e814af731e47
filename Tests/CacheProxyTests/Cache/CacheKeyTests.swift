import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

@Suite struct CacheKeyTests {
    let policy = CachePolicy(routes: [
        try! Route(path: PathPattern("/user/show_one_user/"), methods: ["POST"]),
        try! Route(path: PathPattern("/search"), methods: ["GET", "HEAD"]),
        try! Route(path: PathPattern("/orders"), query: .only(["user_id"])),
        try! Route(path: PathPattern("/me"), vary: ["Authorization"]),
    ])

    private func key(_ method: HTTPMethod, _ uri: String, body: String = "", headers: [(String, String)] = [("host", "api")]) -> CacheKey? {
        let host = headers.first { $0.0.lowercased() == "host" }?.1
        let others = headers.filter { $0.0.lowercased() != "host" }
        guard let request = try? proxyRequest(method.rawValue, uri, headers: others, host: host),
            case .lookup(let route, let lookupMethod) = policy.decide(request)
        else { return nil }
        guard case .key(let key, _) = policy.key(for: request, route: route, lookupMethod: lookupMethod, body: ByteBuffer(string: body))
        else {
            return nil
        }
        return key
    }

    @Test func differentBodiesNeverShare() {
        let alice = key(.POST, "/user/show_one_user/", body: #"{"nick_name":"alice"}"#)
        let bob = key(.POST, "/user/show_one_user/", body: #"{"nick_name":"bob"}"#)
        #expect(alice != nil && bob != nil)
        #expect(alice?.digest != bob?.digest)
        #expect(alice?.digest == key(.POST, "/user/show_one_user/", body: #"{"nick_name":"alice"}"#)?.digest)
    }

    @Test func queryIsNormalized() {
        let a = key(.GET, "/search?b=2&a=1")?.digest
        #expect(a == key(.GET, "/search?a=1&b=2")?.digest)
        #expect(a == key(.GET, "/search?a=%31&b=2")?.digest)
        #expect(a == key(.GET, "/search?&a=1&&b=2&")?.digest)
        #expect(a != key(.GET, "/search?a=1&b=2&b=3")?.digest)
        #expect(a != key(.GET, "/search?a=1")?.digest)
        #expect(key(.GET, "/search?q=a+b")?.digest == key(.GET, "/search?q=a%20b")?.digest)
        #expect(key(.GET, "/search?q=a%2Bb")?.digest != key(.GET, "/search?q=a+b")?.digest)
        // A repeated name keeps its order: the API may read the first value or the last.
        #expect(key(.GET, "/search?a=1&a=2")?.digest != key(.GET, "/search?a=2&a=1")?.digest)
        #expect(key(.GET, "/search?a=1&b=0&a=2")?.digest == key(.GET, "/search?b=0&a=1&a=2")?.digest)
    }

    @Test func onlySelectedQueryParametersCount() {
        #expect(key(.GET, "/orders?user_id=1&utm=a")?.digest == key(.GET, "/orders?utm=b&user_id=1")?.digest)
        #expect(key(.GET, "/orders?user_id=1")?.digest != key(.GET, "/orders?user_id=2")?.digest)
    }

    @Test func methodHostAndPathCount() {
        let get = key(.GET, "/search")
        #expect(get?.digest == key(.HEAD, "/search")?.digest)  // HEAD reads the GET entry
        #expect(get?.method == "GET")
        #expect(get?.digest != key(.GET, "/search", headers: [("host", "other")])?.digest)
        #expect(get?.digest == key(.GET, "/search", headers: [("host", "API")])?.digest)
        #expect(get?.digest != key(.GET, "/search", body: "x")?.digest)
    }

    @Test func varyHeadersSeparateUsersAndAbsenceFromEmpty() {
        let alice = key(.GET, "/me", headers: [("host", "api"), ("authorization", "Bearer a")])
        let bob = key(.GET, "/me", headers: [("host", "api"), ("authorization", "Bearer b")])
        let none = key(.GET, "/me")
        let empty = key(.GET, "/me", headers: [("host", "api"), ("authorization", "")])
        #expect(Set([alice?.digest, bob?.digest, none?.digest, empty?.digest]).count == 4)
    }

    @Test func noConcatenationCollisions() {
        let a = CacheKey(method: "GET", host: "ab", path: "/c", query: [], bodyDigest: nil, vary: [])
        let b = CacheKey(method: "GET", host: "a", path: "b/c", query: [], bodyDigest: nil, vary: [])
        #expect(a.digest != b.digest)
        let q1 = CacheKey(
            method: "GET", host: "h", path: "/", query: QueryString.normalized("a=b&c=d", keeping: .all), bodyDigest: nil, vary: [])
        let q2 = CacheKey(
            method: "GET", host: "h", path: "/", query: QueryString.normalized("a=b%26c%3Dd", keeping: .all), bodyDigest: nil, vary: [])
        #expect(q1.digest != q2.digest)
    }

    @Test func redisKeyIsPrefixVersionAndHex() {
        let k = CacheKey(method: "GET", host: "h", path: "/", query: [], bodyDigest: nil, vary: [])
        let redisKey = k.redisKey(prefix: "cache-proxy:")
        #expect(redisKey.hasPrefix("cache-proxy:v2:"))
        #expect(redisKey.count == "cache-proxy:v2:".count + 64)
        #expect(redisKey.dropFirst("cache-proxy:v2:".count).allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }
}

@Suite struct CachePolicyTests {
    let policy = CachePolicy(routes: [
        try! Route(path: PathPattern("/a")),
        try! Route(path: PathPattern("/v"), vary: ["cookie"]),
        try! Route(path: PathPattern("/small"), maxBodyBytes: 10),
    ])

    private func decide(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)] = []) -> String {
        guard let request = try? proxyRequest(method.rawValue, uri, headers: headers, host: "example.com") else { return "rejected" }
        switch policy.decide(request) {
        case .bypass(let reason): return reason.rawValue
        case .lookup(_, let method): return "lookup \(method)"
        }
    }

    @Test func requestDecisions() {
        #expect(decide(.GET, "/a?x=1") == "lookup GET")
        #expect(decide(.HEAD, "/a") == "lookup GET")
        #expect(decide(.POST, "/a") == "method")
        #expect(decide(.DELETE, "/a") == "method")
        #expect(decide(.GET, "/b") == "no-route")
        #expect(decide(.GET, "/a", [("Authorization", "x")]) == "authorization")
        #expect(decide(.GET, "/a", [("Cookie", "x")]) == "cookie")
        #expect(decide(.GET, "/v", [("Cookie", "x")]) == "lookup GET")
        #expect(decide(.GET, "/a", [("Connection", "upgrade"), ("Upgrade", "websocket")]) == "rejected")
        #expect(decide(.GET, "/a", [("Connection", "upgrade"), ("Upgrade", "h2c")]) == "lookup GET")
        #expect(decide(.GET, "http://example.com/a?x") == "lookup GET")
        #expect(decide(.GET, "/a", [("X-Original-URL", "/admin")]) == "unkeyed-header")
        #expect(decide(.GET, "/a", [("X-HTTP-Method-Override", "DELETE")]) == "unkeyed-header")
    }

    private func notStored(_ status: Int, _ headers: [(String, String)] = [], method: String = "GET", route: Int = 0) -> String? {
        policy.notStoredReason(
            requestMethod: method,
            response: HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: HTTPHeaders(headers)),
            route: policy.routes[route])?.rawValue
    }

    @Test func responseDecisions() {
        #expect(notStored(200) == nil)
        #expect(notStored(200, [("Cache-Control", "public, max-age=60")]) == nil)
        #expect(notStored(404) == "status")
        #expect(notStored(200, [("Set-Cookie", "a=b")]) == "set-cookie")
        #expect(notStored(200, [("Cache-Control", "max-age=0, No-Store")]) == "no-store")
        #expect(notStored(200, [("Cache-Control", "private=\"x\"")]) == "private")
        #expect(notStored(200, [("Cache-Control", "no-cache")]) == "no-cache")
        #expect(notStored(200, method: "HEAD") == "head")
        #expect(notStored(200, [("Content-Length", "11")], route: 2) == "too-large")
        #expect(notStored(200, [("Content-Length", "10")], route: 2) == nil)
        #expect(notStored(200, [("Vary", "Accept-Encoding")]) == "vary")
        #expect(notStored(200, [("Vary", "*")], route: 1) == "vary")
        #expect(notStored(200, [("Vary", "Cookie")], route: 1) == nil)
        #expect(notStored(200, [("Vary", "cookie, Accept-Encoding")], route: 1) == "vary")
    }

    @Test func errorStatusesAreNeverStoredEvenWhenListed() {
        let listing = CachePolicy(routes: [try! Route(path: PathPattern("/a"), statuses: [200, 400, 413, 414, 431, 500, 502, 503])])
        for status in [400, 413, 414, 431, 500, 502, 503] {
            let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: status))
            #expect(listing.notStoredReason(requestMethod: "GET", response: head, route: listing.routes[0]) == .status)
        }
    }

    @Test func outcomesRenderHeaders() {
        #expect(CacheOutcome.hit(ttl: 25).cacheStatus == "cache-proxy; hit; ttl=25")
        #expect(CacheOutcome.hit(ttl: 25).xCache == "HIT")
        #expect(CacheOutcome.miss(.stored).cacheStatus == "cache-proxy; fwd=uri-miss; stored")
        #expect(CacheOutcome.miss(.notStored(.setCookie)).cacheStatus == "cache-proxy; fwd=uri-miss; detail=set-cookie")
        #expect(CacheOutcome.miss(.pending).cacheStatus == "cache-proxy; fwd=uri-miss")
        #expect(CacheOutcome.expired(.stored).cacheStatus == "cache-proxy; fwd=stale; stored")
        #expect(CacheOutcome.expired(.stored).xCache == "MISS")
        #expect(CacheOutcome.expired(.stored).name == "EXPIRED")
        #expect(CacheOutcome.rejected(.obsFold).cacheStatus == "cache-proxy; detail=obs-fold")
        #expect(CacheOutcome.rejected(.obsFold).xCache == "REJECTED")
        #expect(CacheOutcome.bypass(.authorization).cacheStatus == "cache-proxy; fwd=bypass; detail=authorization")
        #expect(CacheOutcome.bypass(.redisUnavailable).xCache == "BYPASS")
    }
}

@Suite struct CacheEntryCodecTests {
    let entry = CacheEntry(
        status: 200, headers: [("content-type", "application/json"), ("x-multi", "a"), ("x-multi", "b"), ("x-utf8", "olá")],
        body: ByteBuffer(bytes: (0...255).map { UInt8($0) }), storedAt: 1_700_000_000_123, ttl: 30_000, grace: 5_000,
        tags: ["user", "list"])

    @Test func roundTrips() {
        #expect(CacheEntryCodec.decode(CacheEntryCodec.encode(entry)) == .entry(entry))
        let empty = CacheEntry(status: 204, headers: [], body: ByteBuffer(), storedAt: 0, ttl: 1)
        #expect(CacheEntryCodec.decode(CacheEntryCodec.encode(empty)) == .entry(empty))
    }

    @Test func unknownVersionIsNotAnEntry() {
        var encoded = CacheEntryCodec.encode(entry)
        encoded.setInteger(UInt8(3), at: encoded.readerIndex)
        #expect(CacheEntryCodec.decode(encoded) == .unknownVersion(3))
    }

    @Test func version1EntriesStillDecode() {
        // Written by the build before header blocks: read the same, served the same.
        let old = CacheEntryCodec.encodeVersion1(entry)
        #expect(old.getInteger(at: old.readerIndex, as: UInt8.self) == 1)
        #expect(CacheEntryCodec.decode(old) == .entry(entry))
        guard case .entry(let decoded) = CacheEntryCodec.decode(old) else { return }
        #expect(
            decoded.headers.map { "\($0.name)=\($0.value)" } == ["content-type=application/json", "x-multi=a", "x-multi=b", "x-utf8=olá"])
    }

    @Test func theHeaderBlockIsWhatAHitWrites() {
        #expect(String(buffer: entry.headerBlock) == "content-type: application/json\r\nx-multi: a\r\nx-multi: b\r\nx-utf8: olá\r\n")
        // A value that would split the head is never in the block.
        let forged = CacheEntry(
            status: 200, headers: [("x-a", "1\r\nset-cookie: s=1"), ("bad name", "v"), ("ok", "v")], body: ByteBuffer(), storedAt: 0, ttl: 1
        )
        #expect(String(buffer: forged.headerBlock) == "ok: v\r\n")
    }

    @Test func everyTruncationIsCorruptNeverACrash() {
        let encoded = CacheEntryCodec.encode(entry)
        for length in 0..<encoded.readableBytes {
            let prefix = encoded.getSlice(at: encoded.readerIndex, length: length)!
            #expect(CacheEntryCodec.decode(prefix) == .corrupt)
        }
        var longer = encoded
        longer.writeString("x")
        #expect(CacheEntryCodec.decode(longer) == .corrupt)
    }

    @Test func freshnessAndAge() {
        #expect(entry.isFresh(now: entry.storedAt + 29_999))
        #expect(!entry.isFresh(now: entry.storedAt + 30_000))
        #expect(entry.age(now: entry.storedAt + 12_500) == 12)
        #expect(entry.remainingTTL(now: entry.storedAt + 12_500) == 17)
        #expect(entry.age(now: entry.storedAt - 5_000) == 0)
    }
}
