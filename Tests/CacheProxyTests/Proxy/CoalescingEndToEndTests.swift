import Foundation
import NIOCore
import Testing
@testable import CacheProxy

/// Request coalescing with a real Redis and a real origin that counts requests.
@Suite(.serialized) struct CoalescingEndToEndTests {
    /// `count` concurrent GETs of `path` through `clients` (round robin).
    func burst(_ count: Int, _ path: String, _ clients: [TestHTTPClient]) async throws -> [TestResponse] {
        try await withThrowingTaskGroup(of: TestResponse.self) { group in
            for index in 0..<count {
                let client = clients[index % clients.count]
                group.addTask { try await client.get(path) }
            }
            var responses: [TestResponse] = []
            for try await response in group { responses.append(response) }
            return responses
        }
    }

    @Test func threeHundredConcurrentMissesMakeOneOriginRequest() async throws {
        try await withSharedCache(instances: 1) { h in
            let release = h.origin.hold("/users/all", on: ProxyHarness.group.next())
            async let responses = burst(300, "/users/all", [h.clients[0]])
            try await waitUntil { h.origin.hasRead("/users/all") }
            try await Task.sleep(for: .milliseconds(300))  // the others pile up behind it
            release.succeed()
            let answered = try await responses
            #expect(h.origin.count("/users/all") == 1)
            #expect(answered.count == 300)
            #expect(Set(answered.map(\.text)).count == 1)
            #expect(answered.allSatisfy { $0.status == .ok })
            let coalesced = answered.filter { $0.cacheStatus?.hasSuffix("detail=coalesced") == true }.count
            let misses = answered.filter { $0.xCache == "MISS" }.count
            #expect(misses == 1)
            let hits = answered.filter { $0.xCache == "HIT" }.count  // coalesced, or a plain hit once stored
            #expect(coalesced > 0)
            #expect(misses + hits == 300)
        }
    }

    /// Coalescing never hands one user's answer to another: requests that differ in a keyed
    /// header (`vary: [Authorization]`) have different keys, so they never wait on each other's fetch.
    @Test func requestsForDifferentUsersAreNeverCoalescedTogether() async throws {
        try await withProxy(routes: "  - path: /slow/*\n    vary: [Authorization]") { h in
            let answered = try await withThrowingTaskGroup(of: (String, TestResponse).self) { group in
                for index in 0..<20 {
                    let user = index % 2 == 0 ? "Bearer alice" : "Bearer bob"
                    group.addTask { (user, try await h.client.get("/slow/300", headers: [("authorization", user)])) }
                }
                var answered: [(String, TestResponse)] = []
                for try await pair in group { answered.append(pair) }
                return answered
            }
            #expect(answered.count == 20)
            for (user, response) in answered {
                #expect(response.status == .ok)
                #expect(response.json["authorization"] as? String == user)
            }
            #expect(answered.contains { $0.1.cacheStatus?.hasSuffix("detail=coalesced") == true })  // each user's burst did coalesce
        }
    }

    @Test func anUnstorableAnswerReleasesTheWaitersAtOnceAndTheNextBurstDoesNotQueue() async throws {
        try await withSharedCache(instances: 1) { h in
            let release = h.origin.hold("/private/a", on: ProxyHarness.group.next())
            let started = Date()
            async let responses = burst(20, "/private/a", [h.clients[0]])
            try await waitUntil { h.origin.hasRead("/private/a") }
            try await Task.sleep(for: .milliseconds(200))
            #expect(h.origin.count("/private/a") == 1)  // the others wait for the leader
            release.succeed()
            let answered = try await responses
            // Released at once: each went to the origin itself, nobody waited for the 5 s timeout.
            #expect(h.origin.count("/private/a") == 20)
            #expect(Date().timeIntervalSince(started) < 3)
            #expect(answered.allSatisfy { $0.status == .ok && $0.cacheStatus == "cache-proxy; fwd=uri-miss; detail=private" })

            // Hit-for-miss: the next burst goes straight to the origin, even while one is held.
            let again = h.origin.hold("/private/a", on: ProxyHarness.group.next())
            async let held = h.clients[0].get("/private/a")
            try await waitUntil { h.origin.hasRead("/private/a") }
            let quick = try await burst(10, "/private/a", [h.clients[0]])
            #expect(quick.count == 10)
            #expect(h.origin.count("/private/a") == 31)
            again.succeed()
            _ = try await held
        }
    }
}

/// Coalescing across instances sharing one Redis: the fetch lease.
@Suite(.serialized) struct CrossInstanceCoalescingTests {
    func burst(_ count: Int, _ path: String, _ clients: [TestHTTPClient]) async throws -> [TestResponse] {
        try await CoalescingEndToEndTests().burst(count, path, clients)
    }

    @Test func threeHundredConcurrentMissesOnThreeInstancesMakeOneOriginRequest() async throws {
        try await withSharedCache(instances: 3) { h in
            let release = h.origin.hold("/users/all", on: ProxyHarness.group.next())
            async let responses = burst(300, "/users/all", h.clients)
            try await waitUntil { h.origin.hasRead("/users/all") }
            try await Task.sleep(for: .milliseconds(300))
            release.succeed()
            let answered = try await responses
            #expect(h.origin.count("/users/all") == 1)
            #expect(answered.count == 300)
            #expect(answered.allSatisfy { $0.status == .ok })
            #expect(Set(answered.map(\.text)).count == 1)
            #expect(answered.filter { $0.xCache == "MISS" }.count == 1)
            // The lease is gone once the fill is stored.
            #expect(try await h.redis("KEYS", "cache-proxy:lease:*").array?.count == 0)
        }
    }

    /// A lease whose holder died (taken here by hand, never released): the others wait until
    /// it expires, then one of them fetches.
    @Test func aDeadHoldersLeaseExpiresAndOneWaiterTakesOver() async throws {
        try await withSharedCache(instances: 3) { h in
            let key = CacheKey(method: "GET", host: "api.test", path: "/users/all", query: [], bodyDigest: nil, vary: [])
            // coalesce_timeout is 5 s by default: leases last 2.5 s; this one 1 s.
            _ = try await h.redis("SET", .string("cache-proxy:lease:" + key.digest), "dead-holder", "PX", "1000")
            let started = Date()
            let answered = try await burst(60, "/users/all", h.clients)
            let took = Date().timeIntervalSince(started)
            #expect(answered.allSatisfy { $0.status == .ok })
            #expect(h.origin.count("/users/all") <= 2)
            #expect(h.origin.count("/users/all") >= 1)
            #expect(took >= 0.9, "nobody waited for the lease (\(took) s)")
            #expect(took < 5, "waited \(took) s")
        }
    }

    @Test func redisDyingDuringACoalescedFetchStillAnswersEveryone() async throws {
        try await withSharedCache(instances: 3) { h in
            let release = h.origin.hold("/users/all", on: ProxyHarness.group.next())
            async let responses = burst(60, "/users/all", h.clients)
            try await waitUntil { h.origin.hasRead("/users/all") }
            try await Task.sleep(for: .milliseconds(200))
            h.redis.stop()
            release.succeed()
            let answered = try await responses
            #expect(answered.count == 60)
            #expect(answered.allSatisfy { $0.status == .ok })
        }
    }

    /// A stale entry in hand: an instance that finds the lease taken serves it at once instead
    /// of waiting for the other instance's fetch.
    @Test func anInstanceFindingTheLeaseTakenServesItsStaleEntry() async throws {
        try await withSharedCache(instances: 2) { h in
            #expect(try await h.clients[0].get("/fallback/a").cacheStatus == "cache-proxy; fwd=uri-miss; stored")
            try await Task.sleep(for: .milliseconds(1100))  // past its 1 s TTL, inside stale_if_error
            let release = h.origin.hold("/fallback/a", on: ProxyHarness.group.next())
            async let refetch = h.clients[0].get("/fallback/a")
            try await waitUntil { h.origin.hasRead("/fallback/a") }
            let started = Date()
            let other = try await h.clients[1].get("/fallback/a")
            #expect(other.xCache == "STALE")
            #expect(other.cacheStatus == "cache-proxy; hit; fwd=stale; detail=revalidating")
            #expect(other.json["count"] as? Int == 1)
            #expect(Date().timeIntervalSince(started) < 3)  // not waiting for the held fetch (released below)
            release.succeed()
            #expect(try await refetch.cacheStatus == "cache-proxy; fwd=stale; stored")
            #expect(h.origin.count("/fallback/a") == 2)
        }
    }

    /// An unstorable answer found by one instance is known to the others through a marker next
    /// to the lease: their waiters go to the origin together, not one instance after another.
    @Test func anUnstorableAnswerIsKnownToEveryInstance() async throws {
        try await withSharedCache(instances: 3) { h in
            let release = h.origin.hold("/private/x", on: ProxyHarness.group.next())
            async let responses = burst(30, "/private/x", h.clients)
            try await waitUntil { h.origin.hasRead("/private/x") }
            try await Task.sleep(for: .milliseconds(200))
            #expect(h.origin.count("/private/x") == 1)
            release.succeed()
            let answered = try await responses
            #expect(answered.allSatisfy { $0.status == .ok })
            #expect(h.origin.count("/private/x") == 30)
            let key = CacheKey(method: "GET", host: "api.test", path: "/private/x", query: [], bodyDigest: nil, vary: [])
            #expect(try await h.redis("EXISTS", .string("cache-proxy:hfm:" + key.digest)).integer == 1)
            #expect(try await h.redis("EXISTS", .string("cache-proxy:lease:" + key.digest)).integer == 0)
        }
    }
}
