import ArgumentParser
import CacheProxy
import Foundation
import NIOCore
import NIOPosix

/// `make bench-redis`: GET throughput of our client next to `redis-benchmark` on the same
/// server, in the same run, printed as ratios.
struct RedisBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "GET throughput of the Redis client compared with redis-benchmark.")

    @Option(help: "Seconds each measurement runs.")
    var seconds: Double = 3

    @Option(help: "Event loop threads (one Redis connection each).")
    var threads: Int = System.coreCount

    @Option(help: "Value size in bytes.")
    var valueSize: Int = 100

    func run() async throws {
        let server = try LocalRedis.start()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let redis = RedisClient(
            configuration: .init(url: RedisURL(host: "127.0.0.1", port: server.port)), eventLoopGroup: group)
        var perCommandConfiguration = RedisClient.Configuration(url: RedisURL(host: "127.0.0.1", port: server.port))
        perCommandConfiguration.flushesEveryCommand = true
        let unbatched = RedisClient(configuration: perCommandConfiguration, eventLoopGroup: group)

        // redis-benchmark GETs key:__rand_int__ → "key:000000000000" with -r unset; store it.
        let key = "key:__rand_int__"
        _ = try await redis.set(key, to: ByteBuffer(repeating: UInt8(ascii: "x"), count: valueSize))
        _ = try await unbatched.ping()

        print("cache-proxy Redis client benchmark: GET of a \(valueSize)-byte value, \(threads) event loops, \(seconds) s each")
        print("server: redis-server on 127.0.0.1:\(server.port)\n")

        let duration = TimeAmount.nanoseconds(Int64(seconds * 1e9))
        let asyncSequential = try await Load.asyncSequential(redis, key: key, duration: duration)
        let loopSequential = try await Load.onEventLoops(redis, key: key, loops: [group.next()], inFlightPerLoop: 1, duration: duration)
        let loops = Array(group.makeIterator())
        let perLoop = max(1, 64 / loops.count)
        let inFlight64 = try await Load.onEventLoops(redis, key: key, loops: loops, inFlightPerLoop: perLoop, duration: duration)
        let inFlight64Unbatched = try await Load.onEventLoops(
            unbatched, key: key, loops: loops, inFlightPerLoop: perLoop, duration: duration)
        let asyncTasks64 = try await Load.asyncConcurrent(redis, key: key, tasks: 64, duration: duration)

        let requests = max(100_000, Int(seconds * 400_000))
        let benchC1 = try server.redisBenchmark(["-t", "get", "-c", "1", "-n", "\(max(20_000, requests / 8))", "-d", "\(valueSize)"])
        let benchP64 = try server.redisBenchmark([
            "-t", "get", "-c", "\(loops.count)", "-P", "\(perLoop)", "-n", "\(requests * 2)", "-d", "\(valueSize)",
        ])
        let benchP64c50 = try server.redisBenchmark(["-t", "get", "-P", "64", "-n", "\(requests * 4)", "-d", "\(valueSize)"])

        func row(_ name: String, _ rate: Double, _ reference: Double?, _ referenceName: String) {
            let ratio = reference.map { String(format: "%.2f×", rate / $0) } ?? ""
            print(
                name.padding(toLength: 46, withPad: " ", startingAt: 0)
                    + String(format: "%12.0f GET/s", rate) + "   " + ratio.padding(toLength: 7, withPad: " ", startingAt: 0) + " "
                    + referenceName)
        }
        print("measurement".padding(toLength: 46, withPad: " ", startingAt: 0) + "  throughput        ratio")
        row("redis-benchmark -c 1", benchC1, nil, "")
        row("redis-benchmark -c \(loops.count) -P \(perLoop) (64 in flight)", benchP64, nil, "")
        row("redis-benchmark -P 64 (50 clients)", benchP64c50, nil, "")
        row("client: sequential from async code", asyncSequential, benchC1, "of redis-benchmark -c 1")
        row("client: sequential on the event loop", loopSequential, benchC1, "of redis-benchmark -c 1")
        row("client: 64 in flight on event loops", inFlight64, benchP64, "of redis-benchmark -c \(loops.count) -P \(perLoop)")
        row("", inFlight64, benchP64c50, "of redis-benchmark -P 64")
        row("client: 64 in flight, flush per command", inFlight64Unbatched, inFlight64, "of batched flushing")
        row("client: 64 async tasks", asyncTasks64, benchP64, "of redis-benchmark -c \(loops.count) -P \(perLoop)")

        await redis.shutdown()
        await unbatched.shutdown()
        try await group.shutdownGracefully()
    }
}

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-proxy-bench", abstract: "cache-proxy benchmarks.",
        subcommands: [
            RedisBenchmark.self, RedisMixedBenchmark.self, InvalidationBenchmark.self, StampedeBenchmark.self, EvictionBenchmark.self,
            CoherenceBenchmark.self,
            OriginServer.self,
        ])
}
