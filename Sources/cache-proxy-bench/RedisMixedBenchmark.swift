import ArgumentParser
import CacheProxy
import Foundation
import NIOCore
import NIOPosix

/// `make bench-redis-mixed`: how much large SETs (stores of big responses) delay small GETs
/// (lookups) when both share a connection, against a separate connection for SETs. The proxy's
/// lookups time out after `redis.timeout` (50 ms by default), so what matters is the tail.
struct RedisMixedBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-mixed",
        abstract: "GET latency while large SETs run: one shared connection per loop against a separate one for SETs.")

    @Option(help: "Seconds each variant runs.")
    var seconds: Double = 4

    @Option(help: "Size of each SET value in bytes.")
    var setSize: Int = 1 << 20

    @Option(help: "Concurrent SET writers.")
    var writers: Int = 4

    @Option(help: "Concurrent GET readers.")
    var readers: Int = 16

    func run() async throws {
        let server = try LocalRedis.start()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let url = RedisURL(host: "127.0.0.1", port: server.port)
        let configuration = RedisClient.Configuration(url: url, commandTimeout: .seconds(10))
        let lookups = RedisClient(configuration: configuration, eventLoopGroup: group)
        let stores = RedisClient(configuration: configuration, eventLoopGroup: group)
        _ = try await lookups.set("small", to: ByteBuffer(repeating: UInt8(ascii: "x"), count: 2048))
        _ = try await stores.ping()
        let value = ByteBuffer(repeating: UInt8(ascii: "v"), count: setSize)

        print(
            "GET latency (2 KiB value, \(readers) readers) while \(writers) writers SET \(setSize / 1024) KiB values; \(seconds) s per variant"
        )
        print(
            "variant".padding(toLength: 22, withPad: " ", startingAt: 0)
                + "   GET/s    p50 ms   p99 ms  p99.9 ms   max ms  >50ms   SET MB/s")
        for round in 0..<2 {
            for (name, setClient) in [("shared connection", lookups), ("separate connection", stores)] {
                let result = try await measure(lookups: lookups, stores: setClient, value: value)
                print(
                    "\(name)\(round == 0 ? "" : " (2)")".padding(toLength: 22, withPad: " ", startingAt: 0)
                        + String(
                            format: "%8.0f  %8.2f %8.2f  %8.2f %8.2f  %5d  %9.1f", result.getsPerSecond, result.p50, result.p99,
                            result.p999,
                            result.max, result.over50, result.setMegabytesPerSecond))
            }
        }
        await lookups.shutdown()
        await stores.shutdown()
        try await group.shutdownGracefully()
    }

    struct Result {
        var getsPerSecond: Double
        var p50: Double
        var p99: Double
        var p999: Double
        var max: Double
        var over50: Int
        var setMegabytesPerSecond: Double
    }

    private func measure(lookups: RedisClient, stores: RedisClient, value: ByteBuffer) async throws -> Result {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        let setSize = self.setSize
        return try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var count = 0
                    while NIODeadline.now() < end {
                        _ = try await stores.set("big:\(writer):\(count % 8)", to: value, expiration: .seconds(30))
                        count += 1
                    }
                    return ([], count)
                }
            }
            for _ in 0..<readers {
                group.addTask {
                    var latencies: [Double] = []
                    while NIODeadline.now() < end {
                        let sent = NIODeadline.now()
                        _ = try await lookups.get("small")
                        latencies.append(Double((NIODeadline.now() - sent).nanoseconds) / 1e6)
                    }
                    return (latencies, 0)
                }
            }
            var latencies: [Double] = []
            var sets = 0
            for try await (part, count) in group {
                latencies += part
                sets += count
            }
            latencies.sort()
            let elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
            func percentile(_ p: Double) -> Double {
                latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
            }
            return Result(
                getsPerSecond: Double(latencies.count) / elapsed, p50: percentile(0.5), p99: percentile(0.99), p999: percentile(0.999),
                max: latencies.last ?? 0, over50: latencies.filter { $0 > 50 }.count,
                setMegabytesPerSecond: Double(sets * setSize) / elapsed / 1e6)
        }
    }
}
