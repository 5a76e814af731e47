import NIOCore
import Testing
@testable import CacheProxy

@Suite struct MemoryCacheTests {
    static func digest(_ n: Int) -> String {
        // Spread over the shards like real (hex SHA-256) digests.
        let hex = Array("0123456789abcdef")
        return String(hex[n & 15]) + String(n)
    }

    static func entry(storedAt: Int64 = 0, ttl: Int64 = 10_000, body: Int = 100, invalidated: Bool = false) -> CacheEntry {
        CacheEntry(
            status: 200, headers: [("content-type", "application/json")], body: ByteBuffer(repeating: UInt8(ascii: "x"), count: body),
            storedAt: storedAt, ttl: ttl, grace: 60_000, tags: ["route"], invalidated: invalidated)
    }

    /// Fills `digest` as a Redis lookup would.
    @discardableResult
    static func fill(_ cache: MemoryCache, _ digest: String, _ entry: CacheEntry, now: Int64 = 0) -> Bool {
        guard let ticket = cache.beginFill(digest) else { return false }
        cache.finishFill(ticket, entry: entry, now: now)
        return cache.lookup(digest, now: now) != nil
    }

    static func liveCache(maxBytes: Int = 1 << 20, maxEntryBytes: Int = 1 << 20) -> MemoryCache {
        let cache = MemoryCache(maxBytes: maxBytes, maxEntryBytes: maxEntryBytes)
        cache.coherenceChanged(live: true)
        return cache
    }

    @Test func nothingIsServedOrKeptUntilTheListenerIsSubscribed() {
        let cache = MemoryCache(maxBytes: 1 << 20, maxEntryBytes: 1 << 20)
        #expect(cache.beginFill("a1") == nil)
        #expect(!Self.fill(cache, "a1", Self.entry()))
        cache.coherenceChanged(live: true)
        #expect(Self.fill(cache, "a1", Self.entry()))
    }

    @Test func losingTheListenerEmptiesTheTierAndStopsServing() {
        let cache = Self.liveCache()
        #expect(Self.fill(cache, "a1", Self.entry()))
        cache.coherenceChanged(live: false)
        #expect(cache.lookup("a1", now: 0) == nil)
        #expect(cache.statistics.entries == 0 && cache.statistics.bytes == 0)
        cache.coherenceChanged(live: true)
        // Back, but empty: what was held before the loss is not trusted.
        #expect(cache.lookup("a1", now: 0) == nil)
    }

    @Test func aReadInFlightAcrossAListenerReconnectIsNotKept() {
        let cache = Self.liveCache()
        let ticket = try! #require(cache.beginFill("a1"))
        cache.coherenceChanged(live: false)
        cache.coherenceChanged(live: true)
        cache.finishFill(ticket, entry: Self.entry(), now: 0)
        #expect(cache.lookup("a1", now: 0) == nil)
    }

    @Test func anInvalidationThatOvertakesTheReadReplyWins() {
        let cache = Self.liveCache()
        // The lookup is on the wire; Redis pushes the key's change on the listener connection,
        // which is processed before the (older) lookup reply.
        let ticket = try! #require(cache.beginFill("a1"))
        cache.invalidate(digests: ["a1"])
        cache.finishFill(ticket, entry: Self.entry(), now: 0)
        #expect(cache.lookup("a1", now: 0) == nil)
        // A later read is kept again: the pending record is gone.
        #expect(Self.fill(cache, "a1", Self.entry()))
    }

    @Test func concurrentReadsOfOneKeyAllDiscardedWhenInvalidatedBetween() {
        let cache = Self.liveCache()
        let first = try! #require(cache.beginFill("a1"))
        let second = try! #require(cache.beginFill("a1"))
        cache.invalidate(digests: ["a1"])
        cache.finishFill(first, entry: Self.entry(), now: 0)
        cache.finishFill(second, entry: Self.entry(), now: 0)
        #expect(cache.lookup("a1", now: 0) == nil)
    }

    @Test func aLookupThatStartsAfterAnInvalidationIsKeptWhileAnOlderOneIsInFlight() {
        // A hot key always has a lookup in flight: an invalidation must not stop it refilling.
        let cache = Self.liveCache()
        let old = try! #require(cache.beginFill("a1"))
        cache.invalidate(digests: ["a1"])
        let new = try! #require(cache.beginFill("a1"))
        cache.finishFill(new, entry: Self.entry(), now: 0)
        #expect(cache.lookup("a1", now: 0) != nil)
        // The older reply, which the invalidation overtook, does not replace it... and is not kept.
        cache.invalidate(digests: ["a1"])
        cache.finishFill(old, entry: Self.entry(), now: 0)
        #expect(cache.lookup("a1", now: 0) == nil)
    }

    @Test func entriesAreChargedForTheirBufferRoundedUpAsNIOAllocatesIt() {
        // A 2.1 KB entry lives in a 4 KiB buffer.
        let entry = Self.entry(body: 2_100)
        #expect(MemoryCache.charge(entry) >= 4096)
        #expect(MemoryCache.charge(entry) < 4096 + 512)
    }

    @Test func onlyFreshEntriesAreKeptAndNoneIsServedPastItsTTL() {
        let cache = Self.liveCache()
        #expect(!Self.fill(cache, "a1", Self.entry(storedAt: 0, ttl: 1_000), now: 1_000))  // stale at read
        #expect(!Self.fill(cache, "b1", Self.entry(invalidated: true)))  // soft-purged
        #expect(Self.fill(cache, "c1", Self.entry(storedAt: 0, ttl: 1_000), now: 500))
        #expect(cache.lookup("c1", now: 999) != nil)
        // Its stale window (grace) is Redis's business: memory stops at the TTL.
        #expect(cache.lookup("c1", now: 1_000) == nil)
    }

    @Test func invalidateAllAndInvalidateDropEntries() {
        let cache = Self.liveCache()
        for n in 0..<50 { Self.fill(cache, Self.digest(n), Self.entry()) }
        cache.invalidate(digests: [Self.digest(3), Self.digest(4)])
        #expect(cache.lookup(Self.digest(3), now: 0) == nil)
        #expect(cache.lookup(Self.digest(5), now: 0) != nil)
        #expect(cache.statistics.entries == 48)
        cache.invalidateAll()
        #expect(cache.statistics.entries == 0 && cache.statistics.bytes == 0)
        #expect(cache.statistics.live)
    }

    @Test func largeEntriesStayInRedis() {
        let cache = Self.liveCache(maxBytes: 1 << 20, maxEntryBytes: 10_000)
        #expect(!Self.fill(cache, "a1", Self.entry(body: 10_000)))
        #expect(Self.fill(cache, "a2", Self.entry(body: 5_000)))
        // Never more than a shard's share, whatever max_entry_bytes says.
        let small = Self.liveCache(maxBytes: 80_000, maxEntryBytes: 1 << 20)
        #expect(small.maxEntryBytes == 10_000)
        #expect(!Self.fill(small, "a1", Self.entry(body: 10_000)))
    }

    @Test func offTierHoldsNothing() {
        let cache = MemoryCache(maxBytes: 0, maxEntryBytes: 1 << 20)
        cache.coherenceChanged(live: true)
        #expect(!cache.isEnabled)
        #expect(cache.beginFill("a1") == nil)
        #expect(cache.lookup("a1", now: 0) == nil)
    }

    @Test func theByteBoundIsNeverExceeded() {
        let maxBytes = 200_000
        let cache = Self.liveCache(maxBytes: maxBytes)
        var random = SplitMix64(seed: 7)
        for step in 0..<5_000 {
            let n = Int(random.next() % 2_000)
            let body = Int(random.next() % 3_000)
            Self.fill(cache, Self.digest(n), Self.entry(body: body))
            if step % 100 == 0 { cache.invalidate(digests: [Self.digest(n)]) }
            #expect(cache.statistics.bytes <= maxBytes)
        }
        #expect(cache.statistics.entries > 10)
    }

    @Test func theBoundHoldsUnderConcurrentUseFromManyThreads() async {
        let maxBytes = 400_000
        let cache = Self.liveCache(maxBytes: maxBytes)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var random = SplitMix64(seed: UInt64(worker))
                    for step in 0..<20_000 {
                        let digest = Self.digest(Int(random.next() % 500))
                        switch step % 10 {
                        case 0: cache.invalidate(digests: [digest])
                        case 1, 2, 3:
                            if let ticket = cache.beginFill(digest) {
                                cache.finishFill(ticket, entry: Self.entry(body: Int(random.next() % 4_000)), now: 0)
                            }
                        default:
                            if let entry = cache.lookup(digest, now: 0) { precondition(entry.status == 200) }
                        }
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 {
                    #expect(cache.statistics.bytes <= maxBytes)
                    await Task.yield()
                }
            }
        }
        #expect(cache.statistics.bytes <= maxBytes)
        // Every ticket was finished: no pending record is left to block later fills.
        for n in 0..<500 {
            #expect(Self.fill(cache, Self.digest(n), Self.entry(body: 10)))
        }
    }
}
