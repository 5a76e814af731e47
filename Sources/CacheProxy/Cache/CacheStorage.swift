import NIOCore

/// What a lookup found. A closed set: a miss and an outage stay different all the way to the
/// state machine, even though both end in forwarding the request.
public enum CacheLookup: Sendable {
    /// An entry within its TTL.
    case fresh(CacheEntry)
    /// An entry past its TTL (still in storage because of its grace); `pastTTL` in milliseconds.
    case stale(CacheEntry, pastTTL: Int64)
    /// No entry, or one written by another format version.
    case miss
    /// The storage did not answer usably (down, timed out, an error reply).
    case unavailable(any Error)
    /// An entry that cannot be decoded; `detail` says what is wrong.
    case corrupt(detail: String)

    /// Classifies a decoded entry at `now` (milliseconds since the epoch).
    public static func classify(_ entry: CacheEntry, now: Int64) -> CacheLookup {
        entry.isFresh(now: now) ? .fresh(entry) : .stale(entry, pastTTL: now - entry.storedAt - entry.ttl)
    }
}

/// Where cached responses live. The proxy's only storage today is Redis (``RedisCacheStorage``);
/// the protocol keeps the request path independent of it (and lets tests use their own).
public protocol CacheStorage: Sendable {
    /// Looks `key` up, completing on `eventLoop`. The future never fails: trouble is
    /// ``CacheLookup/unavailable(_:)``.
    func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<CacheLookup>
    /// Stores `entry` under `key` for its TTL plus grace. Fails on storage trouble.
    func store(_ entry: CacheEntry, under key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<Void>
    /// The storage's wall clock, in milliseconds since the Unix epoch.
    func now() -> Int64
}
