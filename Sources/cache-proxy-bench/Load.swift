import CacheProxy
import NIOCore

/// Load generators: each runs GETs for `duration` and returns GETs per second.
enum Load {
    static func asyncSequential(_ redis: RedisClient, key: String, duration: TimeAmount) async throws -> Double {
        let start = NIODeadline.now()
        let end = start + duration
        var count = 0
        while NIODeadline.now() < end {
            for _ in 0..<100 {
                _ = try await redis.get(key)
            }
            count += 100
        }
        return rate(count, since: start)
    }

    static func asyncConcurrent(_ redis: RedisClient, key: String, tasks: Int, duration: TimeAmount) async throws -> Double {
        let start = NIODeadline.now()
        let end = start + duration
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    var count = 0
                    while NIODeadline.now() < end {
                        for _ in 0..<50 { _ = try await redis.get(key) }
                        count += 50
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        return rate(count, since: start)
    }

    /// `inFlightPerLoop` chains per loop; each chain sends its next GET from the previous reply's
    /// callback, on the loop, so no command crosses threads.
    static func onEventLoops(
        _ redis: RedisClient, key: String, loops: [EventLoop], inFlightPerLoop: Int, duration: TimeAmount
    ) async throws -> Double {
        let start = NIODeadline.now()
        let end = start + duration
        var futures: [EventLoopFuture<Int>] = []
        for loop in loops {
            for _ in 0..<inFlightPerLoop {
                futures.append(loop.flatSubmit { Chain(redis: redis, key: key, loop: loop, end: end).run() })
            }
        }
        var count = 0
        for future in futures { count += try await future.get() }
        return rate(count, since: start)
    }

    private static func rate(_ count: Int, since start: NIODeadline) -> Double {
        Double(count) / (Double((NIODeadline.now() - start).nanoseconds) / 1e9)
    }
}

/// One sequential chain of GETs on one event loop.
private final class Chain {
    let redis: RedisClient
    let key: String
    let loop: EventLoop
    let end: NIODeadline
    let promise: EventLoopPromise<Int>
    var count = 0

    init(redis: RedisClient, key: String, loop: EventLoop, end: NIODeadline) {
        self.redis = redis
        self.key = key
        self.loop = loop
        self.end = end
        self.promise = loop.makePromise()
    }

    func run() -> EventLoopFuture<Int> {
        next()
        return promise.futureResult
    }

    private func next() {
        redis.get(key, on: loop).assumeIsolated().whenComplete { result in
            if case .failure(let error) = result {
                self.promise.fail(error)
                return
            }
            self.count += 1
            if self.count % 64 != 0 || NIODeadline.now() < self.end {
                self.next()
            } else {
                self.promise.succeed(self.count)
            }
        }
    }
}
