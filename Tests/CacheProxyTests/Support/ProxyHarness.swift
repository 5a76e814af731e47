import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import CacheProxy

/// A real redis-server, a real origin and the proxy, all on loopback, for one test.
final class ProxyHarness: @unchecked Sendable {
    // @unchecked: `redis` is replaced only by `restartRedis()`, called from the owning test.
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    var redis: RedisServer
    let origin: TestOrigin
    let proxy: ProxyServer
    let client: TestHTTPClient
    let configuration: ProxyConfiguration
    /// The proxy's wall clock; tests move it forward to expire entries without sleeping.
    let clock: FakeClock

    private init(
        redis: RedisServer, origin: TestOrigin, proxy: ProxyServer, client: TestHTTPClient, configuration: ProxyConfiguration,
        clock: FakeClock
    ) {
        self.clock = clock
        self.redis = redis
        self.origin = origin
        self.proxy = proxy
        self.client = client
        self.configuration = configuration
    }

    /// Starts everything. `routes` is the YAML of the `routes:` list (indented two spaces);
    /// `extra` adds top-level keys.
    static func start(
        routes: String, defaults: String = "", extra: String = "", upstreamPort: Int? = nil, clientIdleTimeout: TimeAmount = .seconds(75)
    ) async throws -> ProxyHarness {
        let redis = try await RedisServer.start()
        let origin = try await TestOrigin.start(group: group)
        let yaml = """
            listen: 127.0.0.1:0
            upstream: http://127.0.0.1:\(upstreamPort ?? origin.port)
            redis:
              url: redis://127.0.0.1:\(redis.port)/0
              timeout: 2s
            \(extra)
            defaults:
              ttl: 30s
            \(defaults)
            routes:
            \(routes)
            """
        let configuration = try ProxyConfiguration.parse(yaml: yaml, file: "test.yaml")
        let clock = FakeClock()
        let proxy = ProxyServer(
            configuration: configuration, eventLoopGroup: group, clock: { clock.now }, clientIdleTimeout: clientIdleTimeout)
        let address = try await proxy.start()
        return ProxyHarness(
            redis: redis, origin: origin, proxy: proxy, client: TestHTTPClient(port: address.port!, group: group),
            configuration: configuration, clock: clock)
    }

    func restartRedis() async throws {
        redis = try await RedisServer.start(port: redis.port)
    }

    func stop() async {
        await proxy.shutdown(gracePeriod: .seconds(1))
        await origin.stop()
        redis.stop()
    }
}

/// Runs `body` with a harness and always stops it.
func withProxy(
    routes: String, defaults: String = "", extra: String = "", upstreamPort: Int? = nil, clientIdleTimeout: TimeAmount = .seconds(75),
    _ body: (ProxyHarness) async throws -> Void
) async throws {
    let harness = try await ProxyHarness.start(
        routes: routes, defaults: defaults, extra: extra, upstreamPort: upstreamPort, clientIdleTimeout: clientIdleTimeout)
    do {
        try await body(harness)
        await harness.stop()
    } catch {
        await harness.stop()
        throw error
    }
}

/// A wall clock (milliseconds since the epoch) that starts at the real time and moves only when told.
final class FakeClock: Sendable {
    private let value = NIOLockedValueBox(RedisCacheStorage.systemClock())
    var now: Int64 { value.withLockedValue { $0 } }
    func advance(by amount: TimeAmount) { value.withLockedValue { $0 += amount.nanoseconds / 1_000_000 } }
}
