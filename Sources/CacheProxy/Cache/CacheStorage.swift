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

    /// Classifies a decoded entry at `now` (milliseconds since the epoch). A soft-purged entry
    /// is stale.
    public static func classify(_ entry: CacheEntry, now: Int64) -> CacheLookup {
        entry.isFresh(now: now) ? .fresh(entry) : .stale(entry, pastTTL: max(0, now - entry.storedAt - entry.ttl))
    }
}

/// A lookup's result with the purge generation read at the same time: a store made from a
/// fetch that starts after the lookup passes it, and is refused if a purge came in between.
public struct CacheRead: Sendable {
    public var lookup: CacheLookup
    /// 0 when the storage keeps no generations (or the lookup failed).
    public var generation: Int64

    public init(_ lookup: CacheLookup, generation: Int64 = 0) {
        self.lookup = lookup
        self.generation = generation
    }
}

/// An entry to store, with what the index needs.
public struct StoreRequest: Sendable {
    /// The entry; its ``CacheEntry/tags`` are indexed.
    public var entry: CacheEntry
    public var key: CacheKey
    /// From the ``CacheRead`` that preceded the fetch.
    public var generation: Int64
    /// The URL index name: the path and normalized query (see ``CacheIndexName/url(path:query:)``).
    public var url: String
    /// The fetch lease this store releases (announcing the fill) when it holds it; nil: none.
    public var leaseToken: String?

    public init(entry: CacheEntry, key: CacheKey, generation: Int64, url: String, leaseToken: String? = nil) {
        self.entry = entry
        self.key = key
        self.generation = generation
        self.url = url
        self.leaseToken = leaseToken
    }
}

/// How a store ended when the storage answered.
public enum StoreReply: Sendable, Hashable {
    case stored
    /// A purge of one of the entry's tags (or its URL, or a prefix) came after the lookup: the
    /// response may predate a write, so it is not stored.
    case refusedPurged
}

/// What a purge removes.
public enum PurgeSelector: Sendable, Hashable, CustomStringConvertible {
    /// Every entry with any of these tags (a route's name is a tag).
    case tags([String])
    /// Every entry of a URL (all methods, bodies and headers): a ``CacheIndexName/url(path:query:)`` value.
    case url(String)
    /// Every entry whose path starts with this.
    case prefix(String)

    public var description: String {
        switch self {
        case .tags(let tags): return "tags \(tags)"
        case .url(let url): return "url \(url)"
        case .prefix(let prefix): return "prefix \(prefix)"
        }
    }
}

/// Names of the indexes an entry is listed in.
public enum CacheIndexName {
    /// A tag's index.
    static func tag(_ tag: String) -> String { "t:" + tag }

    /// The URL index name of a request: its path, then `?` and its query normalized as the route
    /// keys it, each name and value percent-encoded (all but `A-Z a-z 0-9 - . _ ~`), so the
    /// name has no spaces and `?a=1&b=2` and `?b=2&a=%31` give the same name.
    public static func url(path: Substring, query: [QueryString.Parameter]) -> String {
        guard !query.isEmpty else { return String(path) }
        var bytes = Array(path.utf8)
        bytes.append(UInt8(ascii: "?"))
        for (index, parameter) in query.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: "&")) }
            percentEncode(parameter.name, into: &bytes)
            bytes.append(UInt8(ascii: "="))
            percentEncode(parameter.value, into: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func percentEncode(_ input: [UInt8], into output: inout [UInt8]) {
        let hex: StaticString = "0123456789ABCDEF"
        for byte in input {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(byte)
            default:
                output.append(UInt8(ascii: "%"))
                output.append(hex.utf8Start[Int(byte >> 4)])
                output.append(hex.utf8Start[Int(byte & 0x0f)])
            }
        }
    }
}

/// Where cached responses live. The proxy's only storage today is Redis (``RedisCacheStorage``);
/// the protocol keeps the request path independent of it (and lets tests use their own).
public protocol CacheStorage: Sendable {
    /// The entry this process's memory tier holds for `key`, fresh at `now`: no I/O, no promise.
    /// Nil when there is none (then ``lookup(_:on:)`` asks the storage).
    func memoryLookup(_ key: CacheKey, now: Int64) -> CacheEntry?
    /// Looks `key` up, completing on `eventLoop`. The future never fails: trouble is
    /// ``CacheLookup/unavailable(_:)``.
    func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<CacheRead>
    /// Stores an entry for its TTL plus grace, with its tags indexed, unless a purge came after
    /// the lookup. Fails on storage trouble.
    func store(_ request: StoreRequest, on eventLoop: EventLoop) -> EventLoopFuture<StoreReply>
    /// Removes (or with `soft`, marks stale) what `selector` names and blocks stores of fetches
    /// that began before. Returns how many entries it touched. Fails on storage trouble.
    func purge(_ selector: PurgeSelector, soft: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Int>
    /// The storage's wall clock, in milliseconds since the Unix epoch.
    func now() -> Int64

    // Coalescing across instances: a short lease on a key, held by the instance that fetches it.

    /// Takes the fetch lease of `key` for `ttl` unless another holder has it. Fails on storage trouble.
    func acquireLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool>
    /// Gives the lease back if `token` still holds it (compare and delete), and tells waiters;
    /// with `uncacheable`, marks the key so other instances' waiters fetch at once.
    func releaseLease(_ key: CacheKey, token: String, uncacheable: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Void>
    /// Extends the lease to `ttl` if `token` still holds it; false when it does not.
    func renewLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool>
    /// What a waiter sees: the entry (once stored), whether the lease is still held, and the
    /// purge generation. Fails on storage trouble.
    func peekFill(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<FillState>
}

extension CacheStorage {
    /// No memory tier.
    public func memoryLookup(_ key: CacheKey, now: Int64) -> CacheEntry? { nil }
}

/// What a request waiting for another instance's fetch sees.
public enum FillState: Sendable {
    /// The fetch stored its entry.
    case filled(CacheEntry)
    /// Still fetching: the lease is held.
    case pending
    /// No entry and no lease: the holder gave up, or died.
    case abandoned(generation: Int64)
    /// The holder found the answer not storable (hit-for-miss, across instances).
    case uncacheable
}
