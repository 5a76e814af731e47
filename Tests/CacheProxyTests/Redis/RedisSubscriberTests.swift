import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing
@testable import CacheProxy

/// The pub/sub connection against a real redis-server.
@Suite(.serialized) struct RedisSubscriberTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func receivesMessagesAndResubscribesAfterRedisRestarts() async throws {
        var server = try await RedisServer.start(password: "sekret")
        let received = NIOLockedValueBox<[String]>([])
        let listening = NIOLockedValueBox(false)
        let subscriber = RedisSubscriber(
            url: server.url(), channel: "fills", eventLoop: ProxyHarness.group.next(), backoff: RedisBackoff(initial: .milliseconds(10)),
            logger: Self.logger, onMessage: { payload in received.withLockedValue { $0.append(String(buffer: payload)) } },
            onConnectionChange: { up in listening.withLockedValue { $0 = up } })
        subscriber.start()
        let publisher = RedisClient(
            configuration: .init(url: server.url(), commandTimeout: .seconds(5)), eventLoopGroup: ProxyHarness.group)
        try await waitUntil { listening.withLockedValue { $0 } }
        #expect(try await publisher.send(RedisCommand("PUBLISH", ["fills", "one"])).integer == 1)
        #expect(try await publisher.send(RedisCommand("PUBLISH", ["other", "ignored"])).integer == 0)
        try await waitUntil { received.withLockedValue { $0 } == ["one"] }
        #expect(received.withLockedValue { $0 } == ["one"])

        // Redis goes away and comes back on the same port: the subscriber notices, reconnects
        // and subscribes again.
        let port = server.port
        server.stop()
        try await waitUntil { !listening.withLockedValue { $0 } }
        #expect(!listening.withLockedValue { $0 })
        server = try await RedisServer.start(password: "sekret", port: port)
        try await waitUntil { listening.withLockedValue { $0 } }
        var delivered = 0
        let deadline = Date().addingTimeInterval(5)
        while delivered == 0, Date() < deadline {
            delivered = Int((try? await publisher.send(RedisCommand("PUBLISH", ["fills", "two"])).integer) ?? 0)
            if delivered == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        try await waitUntil { received.withLockedValue { $0 }.last == "two" }
        #expect(received.withLockedValue { $0 }.last == "two")
        await subscriber.shutdown()
        await publisher.shutdown()
        server.stop()
    }

    /// A waiter for another instance's fill is woken by the announcement, not by its poll.
    @Test func aFillAnnouncementWakesTheWaiterBeforeItsPoll() async throws {
        try await withRedisServer { server in
            let client = RedisClient(
                configuration: .init(url: server.url(), commandTimeout: .seconds(5)), eventLoopGroup: ProxyHarness.group)
            let storage = RedisCacheStorage(redis: client, keyPrefix: "t:", timeout: .seconds(5))
            let leases = LeaseCoordinator(storage: storage, pollInterval: .seconds(30))
            let subscriber = RedisSubscriber(
                url: server.url(), channel: "t:fills", eventLoop: ProxyHarness.group.next(), logger: Self.logger,
                onMessage: { digest in leases.fillAnnounced(String(buffer: digest)) })
            subscriber.start()
            let loop = ProxyHarness.group.next()
            let key = CacheKey(method: "GET", host: "h", path: "/x", query: [], bodyDigest: nil, vary: [])
            #expect(try await storage.acquireLease(key, token: "holder", ttl: .seconds(10), on: loop).get())
            let resolution = NIOLockedValueBox<LeaseResolution?>(nil)
            leases.resolve(key, ttl: .seconds(10), waitLimit: .seconds(20), on: loop) { result in resolution.withLockedValue { $0 = result }
            }
            try await Task.sleep(for: .milliseconds(300))  // the waiter found the lease taken; the subscriber is up
            let entry = CacheEntry(status: 200, headers: [], body: ByteBuffer(string: "filled"), storedAt: storage.now(), ttl: 30_000)
            _ = try await storage.store(StoreRequest(entry: entry, key: key, generation: 0, url: "/x"), on: loop).get()
            let started = Date()
            try await storage.releaseLease(key, token: "holder", uncacheable: false, on: loop).get()
            try await waitUntil { resolution.withLockedValue { $0 } != nil }
            let took = Date().timeIntervalSince(started)
            guard case .filled(let filled)? = resolution.withLockedValue({ $0 }) else {
                Issue.record("not filled: \(String(describing: resolution.withLockedValue { $0 }))")
                return
            }
            #expect(String(buffer: filled.body) == "filled")
            #expect(took < 5, "woken after \(took) s: the 30 s poll, not the announcement")
            await subscriber.shutdown()
            await client.shutdown()
        }
    }

    /// A held lease is renewed while its holder works (a slow origin), stops being renewed once
    /// released, and waiters leave no trace behind.
    @Test func aHeldLeaseIsRenewedUntilReleased() async throws {
        try await withRedisServer { server in
            let client = RedisClient(
                configuration: .init(url: server.url(), commandTimeout: .seconds(5)), eventLoopGroup: ProxyHarness.group)
            let storage = RedisCacheStorage(redis: client, keyPrefix: "r:", timeout: .seconds(5))
            let leases = LeaseCoordinator(storage: storage)
            let loop = ProxyHarness.group.next()
            let key = CacheKey(method: "GET", host: "h", path: "/slow", query: [], bodyDigest: nil, vary: [])
            let resolution = NIOLockedValueBox<LeaseResolution?>(nil)
            leases.resolve(key, ttl: .milliseconds(300), waitLimit: .seconds(5), on: loop) { result in
                resolution.withLockedValue { $0 = result }
            }
            try await waitUntil { resolution.withLockedValue { $0 } != nil }
            guard case .acquired(let token)? = resolution.withLockedValue({ $0 }) else {
                Issue.record("not acquired")
                return
            }
            // A second instance waits meanwhile and must not take it over.
            let other = NIOLockedValueBox<LeaseResolution?>(nil)
            leases.resolve(key, ttl: .milliseconds(300), waitLimit: .milliseconds(900), on: loop) { result in
                other.withLockedValue { $0 = result }
            }
            try await Task.sleep(for: .milliseconds(1200))  // four lease lifetimes
            #expect(try await client.send(RedisCommand("GET", [.string("r:lease:" + key.digest)])).string == token)
            guard case .fetchAlone? = other.withLockedValue({ $0 }) else {
                Issue.record("the waiter took the renewed lease: \(String(describing: other.withLockedValue { $0 }))")
                return
            }
            try await storage.releaseLease(key, token: token, uncacheable: false, on: loop).get()
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await client.send(RedisCommand("EXISTS", [.string("r:lease:" + key.digest)])).integer == 0)
            #expect(leases.waitingKeys == 0)
            await client.shutdown()
        }
    }
}
