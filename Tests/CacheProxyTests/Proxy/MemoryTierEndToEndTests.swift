import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

extension TestResponse {
    /// Served by the memory tier (`Cache-Status: …; detail=memory`).
    var fromMemory: Bool { cacheStatus?.contains("detail=memory") == true }
}

extension SharedCacheHarness {
    /// Waits until every instance's invalidation listener is subscribed.
    func waitForListeners() async throws {
        let ready = try await waitUntil(10) { proxies.allSatisfy { $0.memory.statistics.live } }
        if !ready { throw TestFailure("invalidation listeners not subscribed") }
    }

    /// Reads `uri` on `client` until the memory tier serves it (bounded).
    func warmMemory(_ client: TestHTTPClient, _ uri: String) async throws {
        for _ in 0..<20 {
            if try await client.get(uri).fromMemory { return }
        }
        throw TestFailure("\(uri) never served from memory")
    }
}

/// The memory tier with two instances on one real Redis: what one instance changes in Redis,
/// the other stops serving from its memory.
@Suite(.serialized) struct MemoryTierEndToEndTests {
    @Test func anEntryStoredByOneInstanceIsServedFromTheOthersMemory() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let (a, b) = (h.clients[0], h.clients[1])
            #expect(try await a.get("/users/all").xCache == "MISS")
            let first = try await b.get("/users/all")
            #expect(first.xCache == "HIT" && !first.fromMemory)  // from Redis, and now in B's memory
            let second = try await b.get("/users/all")
            #expect(second.xCache == "HIT" && second.fromMemory)
            #expect(second.text == first.text)
            #expect(
                second.headers.first(name: "age") != nil
                    && second.headers.first(name: "content-length") == String(second.body.readableBytes))
            #expect(h.origin.count("/users/all") == 1)
        }
    }

    @Test func aWriteOnOneInstanceEmptiesTheOthersMemory() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let (a, b) = (h.clients[0], h.clients[1])
            try await h.warmMemory(b, "/users/all")
            try await h.warmMemory(a, "/users/all")
            #expect(try await a.send(.POST, "/users/create", json: #"{"nick":"carol","name":"Carol"}"#).status == .created)
            // On A (which handled the write) at once: its purge waited for its own invalidations.
            let onA = try await a.get("/users/all")
            #expect(onA.xCache == "MISS" && onA.text.contains("carol"))
            // On B within the window (measured by `make bench-coherence`); never an old list after it.
            let dropped = try await waitUntil(2) { h.proxies[1].memory.statistics.entries == 0 || !h.proxies[1].memory.statistics.live }
            #expect(dropped)
            let onB = try await b.get("/users/all")
            #expect(onB.text.contains("carol"))
        }
    }

    @Test func aPurgeOnOneInstanceIsImmediateThereAndReachesTheOther() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let (a, b) = (h.clients[0], h.clients[1])
            for client in [a, b] {
                try await h.warmMemory(client, "/users/by-nick/alice")
                try await h.warmMemory(client, "/users/by-nick/bob")
            }
            #expect(try await h.purge(#"{"tags": ["user:alice"]}"#, on: 0).status == .ok)
            let alice = try await a.get("/users/by-nick/alice")
            #expect(alice.xCache == "MISS")
            // Bob's entry was not purged: still in memory.
            #expect(try await a.get("/users/by-nick/bob").fromMemory)
            // B: a barrier on its listener proves the invalidation is applied once Redis has sent it.
            try await h.proxies[1].invalidations.barrier(on: ProxyHarness.group.next()).get()
            #expect(!(try await b.get("/users/by-nick/alice").fromMemory))
            #expect(try await b.get("/users/by-nick/bob").fromMemory)
        }
    }

    @Test func aPurgeAnswersOnlyOnceItsInvalidationsReachedTheWritingInstance() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let a = h.clients[0]
            // A's listener gets everything from Redis 300 ms late, as over a slow network.
            let before = h.proxies[0].invalidations.subscriptions
            h.proxies[0].invalidations.setPushDelayForTesting(.milliseconds(300))
            _ = try await h.redis("CLIENT", "KILL", "TYPE", "pubsub")
            #expect(try await waitUntil(10) { h.proxies[0].invalidations.subscriptions > before })
            try await h.warmMemory(a, "/users/by-nick/alice")
            let started = Date()
            #expect(try await h.purge(#"{"tags": ["user:alice"]}"#, on: 0).status == .ok)
            // The purge waited for its barrier, behind the delayed push...
            #expect(Date().timeIntervalSince(started) >= 0.25)
            // ...so A never serves the purged entry from memory, even for a moment.
            let read = try await a.get("/users/by-nick/alice")
            #expect(!read.fromMemory && read.xCache == "MISS")
            // The same for a write's invalidation rule.
            try await h.warmMemory(a, "/users/all")
            #expect(try await a.send(.POST, "/users/create", json: #"{"nick":"dave","name":"Dave"}"#).status == .created)
            let list = try await a.get("/users/all")
            #expect(!list.fromMemory && list.text.contains("dave"))
        }
    }

    @Test func aPurgeWhileTheListenerIsDownIsNeverServedFromMemory() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let (a, b) = (h.clients[0], h.clients[1])
            try await h.warmMemory(b, "/users/by-nick/alice")
            let subscriptions = h.proxies[1].invalidations.subscriptions
            // CLIENT TRACKING refused, so the listeners cannot come back; lookups and stores
            // keep working.
            _ = try await h.redis("ACL", "SETUSER", "default", "-client|tracking")
            _ = try await h.redis("CLIENT", "KILL", "TYPE", "pubsub")
            do {
                #expect(try await waitUntil(5) { !h.proxies[1].memory.statistics.live })
                // The edit's purge happens while B hears nothing.
                #expect(try await a.send(.PUT, "/users/edit", json: #"{"nick":"alice","name":"Alice 2"}"#).status == .ok)
                for _ in 0..<5 {
                    let read = try await b.get("/users/by-nick/alice")
                    #expect(!read.fromMemory)
                    #expect(read.json["name"] as? String == "Alice 2")
                }
                #expect(h.proxies[1].memory.statistics.entries == 0)
                // Still down (refused every retry), still bypassed.
                try await Task.sleep(for: .milliseconds(300))
                #expect(!h.proxies[1].memory.statistics.live)
                #expect(h.proxies[1].invalidations.subscriptions == subscriptions)
            } catch {
                _ = try? await h.redis("ACL", "SETUSER", "default", "+@all")
                throw error
            }
            // Back: the listener resubscribes and the tier fills again.
            _ = try await h.redis("ACL", "SETUSER", "default", "+@all")
            #expect(try await waitUntil(10) { h.proxies[1].invalidations.subscriptions > subscriptions })
            try await h.warmMemory(b, "/users/by-nick/alice")
            #expect(try await b.get("/users/by-nick/alice").json["name"] as? String == "Alice 2")
        }
    }

    @Test func flushallEmptiesEveryInstancesMemory() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            for client in h.clients { try await h.warmMemory(client, "/users/all") }
            _ = try await h.redis("FLUSHALL")
            for proxy in h.proxies {
                #expect(try await waitUntil(2) { proxy.memory.statistics.entries == 0 })
            }
            let first = try await h.clients[0].get("/users/all")
            #expect(first.xCache == "MISS")
            let second = try await h.clients[1].get("/users/all")
            #expect(!second.fromMemory)
        }
    }

    @Test func anOperatorsDelAndExpiryReachTheMemoryTier() async throws {
        try await withSharedCache(taggedTTL: "1s") { h in
            try await h.waitForListeners()
            let b = h.clients[1]
            try await h.warmMemory(b, "/users/all")
            // A key deleted by hand (redis-cli DEL) is an invalidation too.
            let keys = try await h.redis("KEYS", "cache-proxy:v2:*").array ?? []
            for key in keys {
                if let name = key.string { _ = try await h.redis("DEL", .string(name)) }
            }
            #expect(try await waitUntil(2) { h.proxies[1].memory.statistics.entries == 0 })
            #expect(try await b.get("/users/all").xCache == "MISS")
            // An entry is never served from memory past its TTL.
            try await h.warmMemory(b, "/tagged/x")
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(!(try await b.get("/tagged/x").fromMemory))
        }
    }

    @Test func aSoftPurgeStopsMemoryHits() async throws {
        try await withSharedCache { h in
            try await h.waitForListeners()
            let (a, b) = (h.clients[0], h.clients[1])
            try await h.warmMemory(b, "/users/all")
            #expect(try await h.purge(#"{"route": "all_users", "soft": true}"#, on: 0).status == .ok)
            try await h.proxies[1].invalidations.barrier(on: ProxyHarness.group.next()).get()
            let read = try await b.get("/users/all")
            #expect(!read.fromMemory)
            #expect(read.xCache != "HIT")
            _ = a
        }
    }
}
