import NIOCore

/// The cache's storage in Redis: entries under `key_prefix + v1: + digest`, written with
/// `SET … PX (ttl + grace)`.
///
/// Lookups and stores can use different clients: a large `SET` on the connection that carries
/// lookups delays every `GET` queued behind it (see `make bench-redis-mixed`).
public struct RedisCacheStorage: CacheStorage {
    let lookups: RedisClient
    let stores: RedisClient
    /// Prepended to every key.
    public let keyPrefix: String
    /// Per-command timeout.
    public let timeout: TimeAmount
    /// Milliseconds since the Unix epoch.
    let clock: @Sendable () -> Int64

    /// Creates a storage over `redis`.
    ///
    /// - Parameters:
    ///   - stores: the client that writes entries. Default: `redis`.
    ///   - clock: the wall clock in milliseconds since the epoch. Default: the system clock.
    public init(
        redis: RedisClient, stores: RedisClient? = nil, keyPrefix: String, timeout: TimeAmount,
        clock: @escaping @Sendable () -> Int64 = RedisCacheStorage.systemClock
    ) {
        self.lookups = redis
        self.stores = stores ?? redis
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

    public func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<CacheLookup> {
        // One promise and one callback on the hot path (not a chain of map/recover futures).
        let promise = eventLoop.makePromise(of: CacheLookup.self)
        let clock = self.clock
        lookups.send(RedisCommand("GET", [.string(key.redisKey(prefix: keyPrefix))]), on: eventLoop, timeout: timeout).whenComplete {
            result in
            switch result {
            case .success(.bulkString(let value)):
                switch CacheEntryCodec.decode(value) {
                case .entry(let entry): promise.succeed(.classify(entry, now: clock()))
                case .unknownVersion: promise.succeed(.miss)
                case .corrupt: promise.succeed(.corrupt(detail: "the stored value does not decode (\(value.readableBytes) bytes)"))
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

    public func store(_ entry: CacheEntry, under key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        let lifetime = TimeAmount.milliseconds(max(1, entry.ttl + entry.grace))
        return stores.set(
            key.redisKey(prefix: keyPrefix), to: CacheEntryCodec.encode(entry), expiration: lifetime, on: eventLoop, timeout: timeout
        ).map { _ in }
    }

    public func now() -> Int64 { clock() }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
