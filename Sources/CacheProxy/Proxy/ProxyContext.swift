import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What every connection handler shares; immutable after start-up except the log limiter.
final class ProxyContext: Sendable {
    let configuration: ProxyConfiguration
    let settings: ProxySettings
    let storage: any CacheStorage
    let logger: Logger
    let warnings: RateLimitedLogger
    /// Background fetches for `stale_while_revalidate`.
    let refresher: BackgroundRefresher
    /// Concurrent misses for one key share one fetch.
    let coalescer = Coalescer()
    /// …across instances too, through leases in Redis.
    let leases: LeaseCoordinator
    private let pools: [ObjectIdentifier: UpstreamPool]

    init(configuration: ProxyConfiguration, storage: any CacheStorage, eventLoopGroup: EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.settings = ProxySettings(configuration: configuration)
        self.storage = storage
        self.logger = logger
        self.warnings = RateLimitedLogger(logger: logger, interval: .seconds(10))
        self.leases = LeaseCoordinator(storage: storage)
        self.refresher = BackgroundRefresher(settings: settings, storage: storage, leases: leases, warnings: warnings)
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in eventLoopGroup.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPool(
                upstream: configuration.upstream, eventLoop: loop, connectTimeout: configuration.upstreamTimeout,
                maxConnections: configuration.upstreamMaxConnections, maxWaiting: configuration.upstreamMaxWaiting)
        }
        self.pools = pools
    }

    /// The upstream pool of `eventLoop` (one of the group's loops).
    func pool(for eventLoop: EventLoop) -> UpstreamPool {
        guard let pool = pools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("connection on an event loop outside the proxy's group")
        }
        return pool
    }

    /// Closes the idle upstream connections of every loop.
    func closeIdleUpstreamConnections() async {
        for pool in pools.values {
            try? await pool.closeIdle().get()
        }
    }
}

/// Logs a warning of each kind at most once per interval, saying how many were suppressed, so
/// an outage (every request failing the same way) does not flood the log.
final class RateLimitedLogger: Sendable {
    private let logger: Logger
    private let interval: TimeAmount
    private let state = NIOLockedValueBox([String: (last: NIODeadline, suppressed: Int)]())

    init(logger: Logger, interval: TimeAmount) {
        self.logger = logger
        self.interval = interval
    }

    /// Logs `message` unless a warning of `kind` was logged less than `interval` ago.
    func warning(_ kind: String, _ message: @autoclosure () -> String, metadata: Logger.Metadata = [:]) {
        let now = NIODeadline.now()
        let suppressed: Int? = state.withLockedValue { state in
            if let entry = state[kind], now - entry.last < interval {
                state[kind]!.suppressed += 1
                return nil
            }
            let suppressed = state[kind]?.suppressed ?? 0
            state[kind] = (now, 0)
            return suppressed
        }
        guard let suppressed else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed_since_last"] = "\(suppressed)" }
        logger.warning("\(message())", metadata: metadata)
    }
}
