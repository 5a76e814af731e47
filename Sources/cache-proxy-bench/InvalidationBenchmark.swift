import ArgumentParser
import CacheProxy
import Foundation
import NIOCore
import NIOPosix

/// `make bench-invalidation`: what tags cost in Redis. Purge latency for a tag on 1 entry and on
/// 10,000 entries, and the tag index's memory after a million stores with a short TTL (the
/// index must not grow with the number of stores, only with the live entries).
struct InvalidationBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "invalidation",
        abstract: "Purge latency (1 and 10,000 entries) and tag-index memory after many short-lived stores.")

    @Option(help: "Stores for the index-memory run.")
    var stores: Int = 1_000_000

    @Option(help: "TTL of those stores, in milliseconds.")
    var ttl: Int64 = 1000

    @Option(help: "Stores in flight at once.")
    var concurrency: Int = 256

    func run() async throws {
        let server = try LocalRedis.start()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let url = RedisURL(host: "127.0.0.1", port: server.port)
        let client = RedisClient(configuration: .init(url: url, commandTimeout: .seconds(30)), eventLoopGroup: group)
        let storage = RedisCacheStorage(redis: client, keyPrefix: "bench:", timeout: .seconds(30), purgeTimeout: .seconds(60))
        let loop = group.next()

        print("purge latency (one EVALSHA; entries stored just before each purge)")
        print("entries  samples   p50 ms   p99 ms   max ms")
        for (entries, samples) in [(1, 200), (10_000, 20)] {
            var latencies: [Double] = []
            for sample in 0..<samples {
                let tag = "t\(entries)-\(sample)"
                try await storeMany(storage, count: entries, on: loop) { index in
                    Self.request(path: "/p/\(tag)/\(index)", tags: ["purge-bench", tag], ttl: 60_000)
                }
                let started = DispatchTime.now().uptimeNanoseconds
                let purged = try await storage.purge(.tags([tag]), soft: false, on: loop).get()
                latencies.append(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6)
                guard purged == entries else { throw BenchError("purged \(purged) of \(entries)") }
            }
            latencies.sort()
            print(
                String(
                    format: "%7d  %7d  %7.2f  %7.2f  %7.2f", entries, samples, percentile(latencies, 0.5), percentile(latencies, 0.99),
                    latencies.last!))
        }
        _ = try await client.send(RedisCommand("FLUSHALL"))

        let before = try await usedMemory(client)
        print("\n\(stores) stores, TTL \(ttl) ms, tags per entry: the route (shared by all) and one of 10,000 users")
        let started = Date()
        try await storeMany(storage, count: stores, on: loop) { index in
            Self.request(path: "/users/\(index)", tags: ["users", "user:\(index % 10_000)"], ttl: self.ttl)
        }
        let seconds = Date().timeIntervalSince(started)
        let after = try await usedMemory(client)
        print(String(format: "stored in %.1f s (%.0f stores/s)", seconds, Double(stores) / seconds))
        try await report(client, label: "right after the last store", baseline: before, used: after)
        // Let everything expire, then one more store trims what it touches.
        try await Task.sleep(for: .milliseconds(ttl + 1500))
        try await storeMany(storage, count: 100, on: loop) { index in
            Self.request(path: "/users/late-\(index)", tags: ["users", "user:\(index)"], ttl: 60_000)
        }
        try await report(client, label: "after expiry + 100 new stores", baseline: before, used: try await usedMemory(client))

        await client.shutdown()
        try await group.shutdownGracefully()
    }

    static func request(path: String, tags: [String], ttl: Int64) -> StoreRequest {
        let key = CacheKey(method: "GET", host: "bench", path: path, query: [], bodyDigest: nil, vary: [])
        let entry = CacheEntry(
            status: 200, headers: [("content-type", "application/json")], body: ByteBuffer(repeating: UInt8(ascii: "x"), count: 200),
            storedAt: RedisCacheStorage.systemClock(), ttl: ttl, tags: tags)
        return StoreRequest(entry: entry, key: key, generation: Int64.max / 2, url: path)
    }

    func storeMany(_ storage: RedisCacheStorage, count: Int, on loop: EventLoop, _ make: @escaping @Sendable (Int) -> StoreRequest)
        async throws
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let workers = min(concurrency, count)
            for worker in 0..<workers {
                group.addTask {
                    var index = worker
                    while index < count {
                        let reply = try await storage.store(make(index), on: loop).get()
                        guard reply == .stored else { throw BenchError("store refused") }
                        index += workers
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func usedMemory(_ client: RedisClient) async throws -> Int {
        let info = try await client.send(RedisCommand("INFO", ["memory"])).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
        return line.flatMap { Int($0.dropFirst("used_memory:".count)) } ?? -1
    }

    func report(_ client: RedisClient, label: String, baseline: Int, used: Int) async throws {
        let keys = try await client.send(RedisCommand("DBSIZE")).integer ?? -1
        let entries = try await client.send(RedisCommand("EVAL", ["return #redis.call('KEYS', 'bench:v2:*')", "0"])).integer ?? -1
        let shared = try await client.send(RedisCommand("ZCARD", ["bench:i:t:users"])).integer ?? -1
        let urls = try await client.send(RedisCommand("ZCARD", ["bench:urls"])).integer ?? -1
        let userIndexes =
            try await client.send(RedisCommand("EVAL", ["return #redis.call('KEYS', 'bench:i:t:user:*')", "0"])).integer ?? -1
        print("\(label):")
        print(
            "  used_memory \(String(format: "%.1f", Double(used - baseline) / 1_048_576)) MiB above empty; keys \(keys): entries \(entries), "
                + "user-tag indexes \(userIndexes); members: shared tag \(shared), urls \(urls)")
    }

    func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }
}
