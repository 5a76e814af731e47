import NIOCore

/// The cache's storage: entries in Redis under `key_prefix + v1: + digest`.
///
/// A lookup never fails: Redis trouble is the ``LookupResult/unavailable(_:)`` case, distinct
/// from a miss, so callers can tell an outage from an empty cache even though both end in
/// forwarding the request.
public struct CacheStore: Sendable {
    /// The result of a lookup.
    public enum LookupResult: Sendable {
        /// A fresh entry.
        case hit(CacheEntry)
        /// No usable entry (absent, expired, unknown format version, corrupt).
        case miss
        /// Redis did not answer usably; the error says why.
        case unavailable(Error)
    }

    let redis: RedisClient
    /// Prepended to every key.
    public let keyPrefix: String
    /// Per-command timeout.
    public let timeout: TimeAmount
    /// Milliseconds since the Unix epoch.
    let clock: @Sendable () -> Int64

    /// Creates a store over `redis`.
    ///
    /// - Parameter clock: the wall clock in milliseconds since the epoch. Default: the system clock.
    public init(redis: RedisClient, keyPrefix: String, timeout: TimeAmount, clock: @escaping @Sendable () -> Int64 = CacheStore.systemClock)
    {
        self.redis = redis
        self.keyPrefix = keyPrefix
        self.timeout = timeout
        self.clock = clock
    }

    /// The system wall clock in milliseconds since the Unix epoch.
    @Sendable public static func systemClock() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Looks `key` up using the connection of `eventLoop`. The future never fails.
    public func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<LookupResult> {
        // One promise and one callback on the hot path (not a chain of map/recover futures).
        let promise = eventLoop.makePromise(of: LookupResult.self)
        let clock = self.clock
        redis.send(RedisCommand("GET", [.string(key.redisKey(prefix: keyPrefix))]), on: eventLoop, timeout: timeout).whenComplete {
            result in
            switch result {
            case .success(.bulkString(let value)):
                switch CacheEntryCodec.decode(value) {
                case .entry(let entry) where entry.isFresh(now: clock()):
                    promise.succeed(.hit(entry))
                case .entry, .unknownVersion, .corrupt:
                    promise.succeed(.miss)
                }
            case .success(.null):
                promise.succeed(.miss)
            case .success(let other):
                promise.succeed(.unavailable(RedisClientError.unexpectedReply(to: "GET", other)))
            case .failure(let error):
                promise.succeed(.unavailable(error))
            }
        }
        return promise.futureResult
    }

    /// Stores `entry` under `key` with `SET … PX ttl` (plus grace). The future fails on Redis trouble.
    public func store(_ entry: CacheEntry, under key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let lifetime = TimeAmount.milliseconds(max(1, entry.ttl + entry.grace))
        return redis.set(
            key.redisKey(prefix: keyPrefix), to: CacheEntryCodec.encode(entry), expiration: lifetime, on: eventLoop, timeout: timeout
        ).map { _ in }
    }

    /// Milliseconds since the epoch, by this store's clock.
    public func now() -> Int64 { clock() }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
