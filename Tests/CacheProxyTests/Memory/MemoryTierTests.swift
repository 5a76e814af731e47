import Testing
@testable import CacheProxy

@Suite struct MemoryTierTests {
    typealias LRUTier = MemoryTier<Int, LRUPolicy>
    typealias S3Tier = MemoryTier<Int, S3FIFOPolicy>

    @Test func disabledTierStoresNothing() {
        var lru = LRUTier(maxBytes: 0)
        var s3 = S3Tier(maxBytes: 0)
        let storedInLRU = lru.set("a", 1, bytes: 0, expiresAt: .max)
        let storedInS3 = s3.set("a", 1, bytes: 1, expiresAt: .max)
        #expect(!storedInLRU && !storedInS3)
        #expect(lru.get("a", now: 0) == nil && s3.get("a", now: 0) == nil)
        #expect(lru.count == 0 && s3.count == 0 && lru.bytes == 0 && s3.bytes == 0)
    }

    @Test func oversizeEntryIsRejectedAndDropsTheOldValue() {
        var tier = S3Tier(maxBytes: 100)
        let fits = tier.set("a", 1, bytes: 100, expiresAt: .max)
        let tooLarge = tier.set("a", 2, bytes: 101, expiresAt: .max)
        #expect(fits && !tooLarge)
        #expect(tier.get("a", now: 0) == nil)
        #expect(tier.count == 0 && tier.bytes == 0)
    }

    @Test func expiredEntriesAreNeverReturned() {
        var tier = LRUTier(maxBytes: 100)
        tier.set("a", 1, bytes: 10, expiresAt: 1_000)
        #expect(tier.get("a", now: 999) == 1)
        #expect(tier.get("a", now: 1_000) == nil)
        #expect(tier.count == 0 && tier.bytes == 0)
        tier.set("a", 2, bytes: 10, expiresAt: 2_000)
        #expect(tier.get("a", now: 1_500) == 2)
    }

    @Test func replacingAKeyKeepsOneEntry() {
        var tier = S3Tier(maxBytes: 100)
        tier.set("a", 1, bytes: 10, expiresAt: .max)
        tier.set("a", 2, bytes: 30, expiresAt: .max)
        #expect(tier.get("a", now: 0) == 2)
        #expect(tier.count == 1 && tier.bytes == 30)
    }

    @Test func removeAndRemoveAll() {
        var tier = S3Tier(maxBytes: 100)
        for i in 0..<5 { tier.set("k\(i)", i, bytes: 10, expiresAt: .max) }
        tier.remove("k0")
        #expect(tier.get("k0", now: 0) == nil && tier.count == 4 && tier.bytes == 40)
        tier.removeAll()
        #expect(tier.count == 0 && tier.bytes == 0 && tier.evictionPolicy.ghostCount == 0)
        for i in 0..<5 { #expect(tier.get("k\(i)", now: 0) == nil) }
        let stored = tier.set("k1", 1, bytes: 100, expiresAt: .max)
        #expect(stored)
        #expect(tier.get("k1", now: 0) == 1)
    }

    @Test func lruEvictsTheLeastRecentlyUsed() {
        var tier = LRUTier(maxBytes: 30)
        tier.set("a", 1, bytes: 10, expiresAt: .max)
        tier.set("b", 2, bytes: 10, expiresAt: .max)
        tier.set("c", 3, bytes: 10, expiresAt: .max)
        #expect(tier.get("a", now: 0) == 1)
        tier.set("d", 4, bytes: 10, expiresAt: .max)
        #expect(tier.slot(forKey: "b") == nil)
        tier.set("e", 5, bytes: 20, expiresAt: .max)
        #expect(tier.slot(forKey: "c") == nil && tier.slot(forKey: "a") == nil)
        #expect(tier.get("d", now: 0) == 4 && tier.get("e", now: 0) == 5)
        #expect(tier.bytes == 30)
    }

    @Test func s3fifoKeepsHotEntriesThroughAOneHitWonderScanWhereLRUDoesNot() {
        func hotSurvivors<Policy: EvictionPolicy>(_ tier: inout MemoryTier<Int, Policy>) -> Int {
            for i in 0..<20 { tier.set("hot\(i)", i, bytes: 10, expiresAt: .max) }
            for _ in 0..<3 { for i in 0..<20 { _ = tier.get("hot\(i)", now: 0) } }
            for i in 0..<500 { tier.set("scan\(i)", i, bytes: 10, expiresAt: .max) }
            #expect(tier.bytes <= tier.maxBytes)
            return (0..<20).filter { tier.get("hot\($0)", now: 0) != nil }.count
        }
        var s3 = S3Tier(maxBytes: 1_000)
        var lru = LRUTier(maxBytes: 1_000)
        #expect(hotSurvivors(&s3) == 20)
        #expect(hotSurvivors(&lru) == 0)
    }

    @Test func s3fifoSendsGhostHitsToMain() {
        var tier = S3Tier(maxBytes: 1_000)
        tier.set("once", 0, bytes: 10, expiresAt: .max)
        #expect(tier.slot(forKey: "once").map(tier.evictionPolicy.queue(ofSlot:)) == .small)
        for i in 0..<100 { tier.set("filler\(i)", i, bytes: 10, expiresAt: .max) }
        #expect(tier.slot(forKey: "once") == nil)
        #expect(tier.evictionPolicy.ghostCount >= 1)
        tier.set("once", 1, bytes: 10, expiresAt: .max)
        #expect(tier.slot(forKey: "once").map(tier.evictionPolicy.queue(ofSlot:)) == .main)
        #expect(tier.get("once", now: 0) == 1)
    }

    @Test func s3fifoPromotesReadEntriesFromSmallToMain() {
        var tier = S3Tier(maxBytes: 100)
        tier.set("read", 0, bytes: 10, expiresAt: .max)
        _ = tier.get("read", now: 0)
        for i in 0..<10 { tier.set("new\(i)", i, bytes: 10, expiresAt: .max) }
        #expect(tier.slot(forKey: "read").map(tier.evictionPolicy.queue(ofSlot:)) == .main)
        #expect(tier.slot(forKey: "new0") == nil)
    }

    @Test(arguments: [false, true]) func boundHoldsUnderRandomOperations(s3fifo: Bool) {
        if s3fifo {
            var tier = S3Tier(maxBytes: 2_000)
            randomOperations(&tier, seed: 7)
        } else {
            var tier = LRUTier(maxBytes: 2_000)
            randomOperations(&tier, seed: 7)
        }
    }

    /// 20,000 random sets (0–300 bytes, some larger than the bound), gets at a moving clock,
    /// removes and rare flushes; after each: the bound holds, and a get returns the last value set
    /// for the key and only while unexpired.
    private func randomOperations<Policy: EvictionPolicy>(_ tier: inout MemoryTier<Int, Policy>, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var model: [String: (value: Int, expiresAt: Int64)] = [:]
        var now: Int64 = 0
        var hits = 0
        for step in 0..<20_000 {
            let key = "k\(Int.random(in: 0..<200, using: &random))"
            now += Int64.random(in: 0...2, using: &random)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45:
                let bytes = Int.random(in: 0...300, using: &random) + (step % 997 == 0 ? 2_000 : 0)
                let expiresAt = now + Int64.random(in: 1...500, using: &random)
                let stored = tier.set(key, step, bytes: bytes, expiresAt: expiresAt)
                #expect(stored == (bytes <= tier.maxBytes))
                model[key] = (step, expiresAt)
            case 45..<90:
                if let value = tier.get(key, now: now) {
                    hits += 1
                    #expect(value == model[key]?.value)
                    #expect(now < model[key]!.expiresAt)
                }
            case 90..<99:
                tier.remove(key)
                #expect(tier.get(key, now: now) == nil)
            default:
                tier.removeAll()
                #expect(tier.count == 0 && tier.bytes == 0)
            }
            #expect(tier.bytes <= tier.maxBytes && tier.bytes >= 0)
            #expect(tier.count <= 200)
        }
        #expect(hits > 0)
    }

    @Test func simulationWithSmallParameters() {
        var configuration = EvictionSimulation.Configuration()
        configuration.keys = 10_000
        configuration.requests = 100_000
        let results = EvictionSimulation.run(configuration)
        #expect(results.count == 12)
        for result in results {
            print(
                "alpha \(result.alpha) cache \(result.cachePercent)% \(result.policy): hit ratio "
                    + "\((result.hitRatio * 10_000).rounded() / 100)% \(Int(result.nanosecondsPerRequest)) ns/req")
            #expect(result.hitRatio > 0 && result.hitRatio < 1)
        }
        for policy in ["LRU", "S3-FIFO"] {
            for alpha in configuration.alphas {
                let ratios = results.filter { $0.policy == policy && $0.alpha == alpha }.map(\.hitRatio)
                #expect(ratios == ratios.sorted())
            }
        }
    }
}
