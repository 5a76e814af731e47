import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import CacheProxy

/// The client against a real `redis-server` on a loopback port.
@Suite struct RedisClientTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    private func withClient<T>(
        _ url: RedisURL,
        commandTimeout: TimeAmount = .seconds(5),
        backoff: RedisBackoff = RedisBackoff(initial: .milliseconds(10), maximum: .milliseconds(100)),
        _ body: (RedisClient) async throws -> T
    ) async throws -> T {
        let client = RedisClient(
            configuration: .init(url: url, connectTimeout: .seconds(2), commandTimeout: commandTimeout, backoff: backoff),
            eventLoopGroup: Self.group)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    @Test func roundTrips() async throws {
        try await withRedisServer { server in
            try await withClient(server.url()) { redis in
                #expect(try await redis.ping() == "PONG")
                #expect(try await redis.get("missing") == nil)
                #expect(try await redis.set("k", to: ByteBuffer(string: "v1")))
                #expect(try await redis.get("k") == ByteBuffer(string: "v1"))
                #expect(try await redis.set("k", to: ByteBuffer(string: "v2"), onlyIfAbsent: true) == false)
                #expect(try await redis.get("k") == ByteBuffer(string: "v1"))
                #expect(try await redis.set("t", to: ByteBuffer(string: "x"), expiration: .seconds(100)))
                let ttl = try await redis.send(RedisCommand("PTTL", ["t"]))
                #expect((ttl.integer ?? 0) > 90_000 && (ttl.integer ?? 0) <= 100_000)
                #expect(try await redis.expire("k", after: .seconds(50)))
                #expect(try await redis.expire("nope", after: .seconds(50)) == false)
                #expect(try await redis.delete(["k", "t", "nope"]) == 2)
                #expect(try await redis.get("k") == nil)
                let list = try await redis.send(RedisCommand("RPUSH", ["l", "a", "b"]))
                #expect(list == .integer(2))
                #expect(
                    try await redis.send(RedisCommand("LRANGE", ["l", 0, -1]))
                        == .array([.bulkString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "b"))]))
            }
        }
    }

    @Test func tenThousandConcurrentCommandsEachGetTheirOwnReply() async throws {
        try await withRedisServer { server in
            try await withClient(server.url()) { redis in
                let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<10_000 {
                        group.addTask {
                            let payload = "payload-\(index)-\(String(repeating: "x", count: index % 97))"
                            let reply = try await redis.send(RedisCommand("ECHO", [.string(payload)]))
                            return reply.string == payload ? 0 : 1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(mismatches == 0)

                // The same from futures on the event loops, with SET/GET pairs.
                let loops = Array(Self.group.makeIterator())
                let futures = (0..<2_000).map { index -> EventLoopFuture<Bool> in
                    let loop = loops[index % loops.count]
                    let key = "key-\(index)"
                    return loop.flatSubmit {
                        redis.set(key, to: ByteBuffer(string: "value-\(index)"), on: loop)
                            .flatMap { _ in redis.get(key, on: loop) }
                            .map { $0 == ByteBuffer(string: "value-\(index)") }
                    }
                }
                let results = try await EventLoopFuture.whenAllSucceed(futures, on: loops[0]).get()
                #expect(results.allSatisfy { $0 })
            }
        }
    }

    @Test func eightMiBValuesRoundTrip() async throws {
        try await withRedisServer { server in
            try await withClient(server.url()) { redis in
                var generator = SystemRandomNumberGenerator()
                let bytes = (0..<(8 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let value = ByteBuffer(bytes: bytes)
                _ = try await redis.set("big", to: value)
                let back = try await redis.get("big")
                #expect(back?.readableBytes == 8 << 20)
                #expect(back == value)
                // A small command right after still gets its own reply.
                #expect(try await redis.ping() == "PONG")
            }
        }
    }

    @Test func allByteValuesRoundTripInKeysAndValues() async throws {
        try await withRedisServer { server in
            try await withClient(server.url()) { redis in
                let all = ByteBuffer(bytes: (0...255).map { UInt8($0) })
                _ = try await redis.set("all-bytes", to: all)
                #expect(try await redis.get("all-bytes") == all)
                _ = try await redis.send(RedisCommand("SET", [.bytes(all), .bytes(all)]))
                #expect(try await redis.send(RedisCommand("GET", [.bytes(all)])) == .bulkString(all))
                let empty = ByteBuffer()
                _ = try await redis.set("empty", to: empty)
                #expect(try await redis.get("empty") == empty)
            }
        }
    }

    @Test func errorRepliesAreTypedAndTheConnectionKeepsWorking() async throws {
        try await withRedisServer { server in
            try await withClient(server.url()) { redis in
                _ = try await redis.set("s", to: ByteBuffer(string: "x"))
                let wrongType = await #expect(throws: RedisServerError.self) {
                    try await redis.send(RedisCommand("LPUSH", ["s", "y"]))
                }
                #expect(wrongType?.prefix == "WRONGTYPE")
                let unknown = await #expect(throws: RedisServerError.self) { try await redis.send(RedisCommand("NOSUCHCOMMAND")) }
                #expect(unknown?.prefix == "ERR")
                #expect(try await redis.get("s") == ByteBuffer(string: "x"))
            }
        }
    }

    @Test func authenticatesAndReportsAWrongPasswordClearly() async throws {
        try await withRedisServer(password: "s3cret") { server in
            try await withClient(server.url()) { redis in
                _ = try await redis.set("guarded", to: ByteBuffer(string: "ok"))
                #expect(try await redis.get("guarded") == ByteBuffer(string: "ok"))
            }
            var withUser = server.url()
            withUser.username = "default"
            try await withClient(withUser) { redis in
                let pong = try await redis.ping()
                #expect(pong == "PONG")
            }
            try await withClient(server.url(password: "wrong")) { redis in
                let error = await #expect(throws: RedisClientError.self) { try await redis.ping() }
                #expect(error == .authenticationFailed)
                #expect(error?.detail.contains("WRONGPASS") == true)
            }
            var noPassword = server.url()
            noPassword.password = nil
            try await withClient(noPassword) { redis in
                let error = await #expect(throws: RedisServerError.self) { try await redis.ping() }
                #expect(error?.prefix == "NOAUTH")
            }
        }
    }

    @Test func selectsTheDatabase() async throws {
        try await withRedisServer { server in
            try await withClient(server.url(database: 3)) { db3 in
                try await db3.set("where", to: ByteBuffer(string: "three"))
                #expect(try await db3.get("where") == ByteBuffer(string: "three"))
            }
            try await withClient(server.url(database: 0)) { db0 in
                let value = try await db0.get("where")
                #expect(value == nil)
            }
            try await withClient(server.url(database: 9999)) { bad in
                let error = await #expect(throws: RedisClientError.self) { try await bad.ping() }
                #expect(error == .handshakeFailed)
                #expect(error?.detail.contains("SELECT") == true)
            }
        }
    }

    @Test func commandTimesOutWhileTheServerSleepsAndLateRepliesAreDropped() async throws {
        try await withRedisServer { server in
            try await withClient(server.url(), commandTimeout: .milliseconds(200)) { redis in
                let loop = Self.group.next()
                _ = try await redis.set("a", to: ByteBuffer(string: "A"), on: loop).get() as Bool
                _ = try await redis.set("b", to: ByteBuffer(string: "B"), on: loop).get() as Bool
                let sleep = redis.send(RedisCommand("DEBUG", ["SLEEP", "1"]), on: loop, timeout: .seconds(10))
                let timedOut = redis.get("a", on: loop)
                let error = await #expect(throws: RedisClientError.self) { try await timedOut.get() }
                #expect(error == .timeout)
                #expect(try await sleep.get() == .simpleString("OK"))
                // The timed-out GET's reply arrived late and was dropped: replies still line up.
                #expect(try await redis.get("b", on: loop).get() == ByteBuffer(string: "B"))
                #expect(try await redis.get("a", on: loop).get() == ByteBuffer(string: "A"))
            }
        }
    }

    @Test func serverKilledMidRunFailsInFlightCommandsThenRecovers() async throws {
        let server = try await RedisServer.start()
        defer { server.stop() }
        try await withClient(server.url(), commandTimeout: .seconds(30)) { redis in
            let loop = Self.group.next()
            _ = try await redis.set("k", to: ByteBuffer(string: "before"), on: loop).get() as Bool
            // Keep the server busy so that the next commands are in flight when it dies.
            let sleeping = redis.send(RedisCommand("DEBUG", ["SLEEP", "5"]), on: loop)
            let inFlight = (0..<100).map { _ in redis.get("k", on: loop) }
            try await Task.sleep(for: .milliseconds(100))
            server.stop()

            // They fail with a connection error, not by running into their 30 s timeout.
            for future in [sleeping.map { _ in nil }] + inFlight {
                let error = await #expect(throws: RedisClientError.self) { try await future.get() }
                #expect(error == .connectionClosed)
            }
            // While the server is down, commands fail fast with the connect error.
            let down = await #expect(throws: RedisClientError.self) { try await redis.get("k", on: loop).get() }
            #expect(down == .connectFailed || down == .connectionClosed)

            let restarted = try await RedisServer.start(port: server.port)
            defer { restarted.stop() }
            let deadline = Date().addingTimeInterval(10)
            var recovered = false
            while Date() < deadline {
                if (try? await redis.ping(on: loop).get()) == "PONG" {
                    recovered = true
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(recovered)
            _ = try await redis.set("k", to: ByteBuffer(string: "after"), on: loop).get() as Bool
            #expect(try await redis.get("k", on: loop).get() == ByteBuffer(string: "after"))
        }
    }

    @Test func aServerThatAcceptsAndClosesIsRetriedWithBackoff() async throws {
        // Counts accepted connections and closes each at once.
        let accepted = ManagedAtomicCounter()
        let server = try await ServerBootstrap(group: Self.group)
            .childChannelInitializer { channel in
                accepted.increment()
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let url = RedisURL(host: "127.0.0.1", port: server.localAddress!.port!)
        try await withClient(url, backoff: RedisBackoff(initial: .milliseconds(25), maximum: .seconds(2))) { redis in
            redis.connect()
            for _ in 0..<20 {
                _ = try? await redis.ping()
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        try await server.close()
        // Two connections (one per loop), each backing off 25, 50, 100, 200, 400 ms…: about a
        // dozen in a second, where an immediate reconnect makes thousands.
        #expect(accepted.value < 40, "\(accepted.value) connections in about a second")
        #expect(accepted.value >= 2)
    }

    @Test func noServerFailsFastWithAConnectError() async throws {
        let port = try freeLoopbackPort()
        try await withClient(RedisURL(host: "127.0.0.1", port: port), commandTimeout: .seconds(30)) { redis in
            let error = await #expect(throws: RedisClientError.self) { try await redis.ping() }
            #expect(error == .connectFailed)
            #expect(error?.detail.contains("127.0.0.1:\(port)") == true)
        }
    }

    @Test func shutdownFailsLaterCommands() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(configuration: .init(url: server.url()), eventLoopGroup: Self.group)
            let pong = try await redis.ping()
            #expect(pong == "PONG")
            await redis.shutdown()
            let error = await #expect(throws: RedisClientError.self) { try await redis.ping() }
            #expect(error == .clientShutdown)
        }
    }
}

/// A thread-safe counter for tests.
final class ManagedAtomicCounter: Sendable {
    private let box = NIOLockedValueBox(0)
    var value: Int { box.withLockedValue { $0 } }
    func increment() { box.withLockedValue { $0 += 1 } }
}
