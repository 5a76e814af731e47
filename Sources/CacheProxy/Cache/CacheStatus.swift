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
    /// The request body is larger than the route's `max_body_bytes`.
    case requestTooLarge = "request-too-large"
    /// The request asks to switch protocols (`Upgrade`).
    case upgrade = "upgrade"
    /// Redis did not answer (down, timed out, or an error reply).
    case redisUnavailable = "redis-unavailable"
}

/// Why a forwarded response was not stored.
public enum NotStoredReason: String, Sendable, Hashable {
    /// Its status is not in the route's `statuses`.
    case status = "status"
    /// It sets a cookie.
    case setCookie = "set-cookie"
    /// `Cache-Control: no-store`.
    case noStore = "no-store"
    /// `Cache-Control: private`.
    case privateResponse = "private"
    /// `Cache-Control: no-cache` (it may only be reused after revalidation, which this mode does not do).
    case noCache = "no-cache"
    /// Its body is larger than the route's `max_body_bytes`.
    case tooLarge = "too-large"
    /// The request was a HEAD; there is no body to store.
    case headRequest = "head"
    /// Redis did not take the entry (down, timed out, or an error reply).
    case storeFailed = "store-failed"
}

/// What the cache did for one request; rendered into `X-Cache` and `Cache-Status` (RFC 9211)
/// and used for logs, so all three say the same thing.
public enum CacheOutcome: Sendable, Hashable {
    /// Served from the cache; `ttl` is the remaining freshness in seconds.
    case hit(ttl: Int)
    /// Looked up, not found, forwarded; stored or not (and why not).
    case miss(stored: Bool, notStoredReason: NotStoredReason?)
    /// Not looked up: forwarded as is.
    case bypass(BypassReason)

    /// The `X-Cache` header value: `HIT`, `MISS` or `BYPASS`.
    public var xCache: String {
        switch self {
        case .hit: return "HIT"
        case .miss: return "MISS"
        case .bypass: return "BYPASS"
        }
    }

    /// The `Cache-Status` header value, e.g. `cache-proxy; hit; ttl=25`.
    public var cacheStatus: String {
        switch self {
        case .hit(let ttl):
            return "cache-proxy; hit; ttl=\(ttl)"
        case .miss(true, _):
            return "cache-proxy; fwd=uri-miss; stored"
        case .miss(false, let reason):
            return reason.map { "cache-proxy; fwd=uri-miss; detail=\($0.rawValue)" } ?? "cache-proxy; fwd=uri-miss"
        case .bypass(let reason):
            return "cache-proxy; fwd=bypass; detail=\(reason.rawValue)"
        }
    }
}
