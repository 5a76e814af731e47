import NIOCore

/// Why a request was not looked up in the cache.
public enum BypassReason: String, Sendable, Hashable {
    /// No route matches the path.
    case noRoute = "no-route"
    /// A route matches, but not for this method.
    case method = "method"
    /// `Authorization` present and not listed in the route's `vary`.
    case authorization = "authorization"
    /// `Cookie` present and not listed in the route's `vary`.
    case cookie = "cookie"
    /// A header that can change the response but is not in the key (`X-Original-URL`,
    /// `X-HTTP-Method-Override`, … see the route's `bypass_headers`).
    case unkeyedHeader = "unkeyed-header"
    /// The request body is larger than the route's `max_body_bytes`.
    case requestTooLarge = "request-too-large"
    /// Redis did not answer (down, timed out, or an error reply).
    case redisUnavailable = "redis-unavailable"
    /// The route keys on the JSON body (`body_key: json`) and the body is not JSON (or, with a
    /// field selection, not a JSON object).
    case bodyNotJSON = "body-not-json"
}

/// Why a forwarded response was not stored.
public enum NotStoredReason: String, Sendable, Hashable {
    /// Its status is not in the route's `statuses`, or is one that is never stored (400, 413,
    /// 414, 431, 5xx).
    case status = "status"
    /// It sets a cookie.
    case setCookie = "set-cookie"
    /// `Cache-Control: no-store`.
    case noStore = "no-store"
    /// `Cache-Control: private`.
    case privateResponse = "private"
    /// `Cache-Control: no-cache` (it may only be reused after revalidation, which this mode does not do).
    case noCache = "no-cache"
    /// Its `Vary` names a request header that is not in the route's key, or is `*`.
    case vary = "vary"
    /// Its body is larger than the route's `max_body_bytes`.
    case tooLarge = "too-large"
    /// The request was a HEAD; there is no body to store.
    case headRequest = "head"
    /// Redis did not take the entry (down, timed out, or an error reply).
    case storeFailed = "store-failed"
    /// The upstream failed (no answer, an early close, a timeout): nothing to store.
    case upstreamFailed = "upstream-failed"
    /// One of its tags (or its URL, or a path prefix) was purged after the lookup: the response
    /// may predate the write that caused the purge.
    case purged = "purged"
    /// The fetch took longer than purge records are kept (15 minutes), so a purge during it
    /// could go unseen.
    case slowFetch = "slow-fetch"
    /// More than 2,000 tags.
    case tooManyTags = "too-many-tags"
}

/// Why an entry past its TTL was served.
public enum StaleReason: Sendable, Hashable {
    /// Inside the route's `stale_while_revalidate` window: served at once while one background
    /// fetch replaces it.
    case revalidating
    /// Inside `stale_if_error`: the origin answered with this status (one of `stale_if_error_statuses`).
    case originStatus(Int)
    /// Inside `stale_if_error`: the origin refused, timed out or closed early.
    case originDown
}

/// What happened to a forwarded response that could have been stored.
public enum StoreResult: Sendable, Hashable {
    /// Not decided yet (the response has not arrived, or is being stored).
    case pending
    case stored
    case notStored(NotStoredReason)
}

/// What the cache did for one request, and why. The only source of `X-Cache`, `Cache-Status`
/// (RFC 9211) and the `cache` field of the log line, so all three always agree.
public enum CacheOutcome: Sendable, Hashable {
    /// Served from the cache; `ttl` is the remaining freshness in seconds, `fromMemory` whether
    /// the proxy's memory tier had it (else Redis did). `X-Cache: HIT`.
    case hit(ttl: Int, fromMemory: Bool = false)
    /// Served from the cache past its TTL (or soft-purged). `X-Cache: STALE`.
    case stale(StaleReason)
    /// A miss answered with what a concurrent request for the same key fetched and stored
    /// (request coalescing). `X-Cache: HIT`, `COALESCED` in the log.
    case coalesced(ttl: Int)
    /// Looked up, nothing usable found, forwarded. `X-Cache: MISS`.
    case miss(StoreResult)
    /// Looked up, found past its TTL, forwarded. `X-Cache: MISS` (as caches say for a refetch),
    /// `Cache-Status: …; fwd=stale`, `EXPIRED` in the log.
    case expired(StoreResult)
    /// Not looked up: forwarded as is. `X-Cache: BYPASS`.
    case bypass(BypassReason)
    /// Refused by the proxy, never forwarded (400, 401, 408, 414, 417, 431, 501, 505). `X-Cache: REJECTED`.
    case rejected(RequestRejection.Reason)
    /// A `PURGE` request answered by the proxy: how many entries it removed, nil when the
    /// storage failed. `X-Cache: PURGE`.
    case purge(removed: Int?)

    /// The `X-Cache` header value: `HIT`, `MISS` (also for an expired entry), `BYPASS` or `REJECTED`.
    public var xCache: String {
        switch self {
        case .hit, .coalesced: return "HIT"
        case .stale: return "STALE"
        case .miss, .expired: return "MISS"
        case .bypass: return "BYPASS"
        case .rejected: return "REJECTED"
        case .purge: return "PURGE"
        }
    }

    /// The outcome's name in the log: `HIT`, `COALESCED`, `STALE`, `MISS`, `EXPIRED`, `BYPASS`, `REJECTED` or `PURGE`.
    public var name: String {
        switch self {
        case .expired: return "EXPIRED"
        case .coalesced: return "COALESCED"
        default: return xCache
        }
    }

    /// The `Cache-Status` header value, e.g. `cache-proxy; hit; ttl=25`.
    public var cacheStatus: String {
        switch self {
        case .hit(let ttl, let fromMemory):
            return fromMemory ? "cache-proxy; hit; ttl=\(ttl); detail=memory" : "cache-proxy; hit; ttl=\(ttl)"
        case .coalesced(let ttl):
            return "cache-proxy; hit; ttl=\(ttl); detail=coalesced"
        case .stale(.revalidating):
            return "cache-proxy; hit; fwd=stale; detail=revalidating"
        case .stale(.originStatus(let status)):
            return "cache-proxy; hit; fwd=stale; fwd-status=\(status)"
        case .stale(.originDown):
            return "cache-proxy; hit; fwd=stale; detail=origin-down"
        case .miss(let result):
            return "cache-proxy; fwd=uri-miss" + Self.render(result)
        case .expired(let result):
            return "cache-proxy; fwd=stale" + Self.render(result)
        case .bypass(let reason):
            return "cache-proxy; fwd=bypass; detail=\(reason.rawValue)"
        case .rejected(let reason):
            return "cache-proxy; detail=\(reason.rawValue)"
        case .purge(let removed):
            return removed == nil ? "cache-proxy; detail=purge-failed" : "cache-proxy; detail=purged"
        }
    }

    /// Writes ``cacheStatus`` (without making a String for a hit).
    func writeCacheStatus(into buffer: inout ByteBuffer) {
        switch self {
        case .hit(let ttl, let fromMemory):
            buffer.writeStaticString("cache-proxy; hit; ttl=")
            ResponseWire.writeDecimal(ttl, into: &buffer)
            if fromMemory { buffer.writeStaticString("; detail=memory") }
        default:
            buffer.writeString(cacheStatus)
        }
    }

    /// The store result of a forwarded lookup (nil for hits, bypasses and rejections).
    var storeResult: StoreResult? {
        switch self {
        case .miss(let result), .expired(let result): return result
        case .hit, .coalesced, .stale, .bypass, .rejected, .purge: return nil
        }
    }

    /// The same outcome with its store result replaced (no change for outcomes without one).
    func with(_ result: StoreResult) -> CacheOutcome {
        switch self {
        case .miss: return .miss(result)
        case .expired: return .expired(result)
        case .hit, .coalesced, .stale, .bypass, .rejected, .purge: return self
        }
    }

    private static func render(_ result: StoreResult) -> String {
        switch result {
        case .pending: return ""
        case .stored: return "; stored"
        case .notStored(let reason): return "; detail=\(reason.rawValue)"
        }
    }
}
