import NIOCore

/// The validated configuration of a proxy: what it listens on, what it forwards to, where it
/// caches and which routes are cached. Built by ``ProxyConfiguration/load(path:)``; every
/// value here has already been checked.
public struct ProxyConfiguration: Sendable {
    /// Where the proxy accepts connections. Required.
    public var listen: HostAndPort
    /// The API behind the proxy. Required.
    public var upstream: UpstreamURL
    /// How long the upstream may take to start answering (connect plus response head); past
    /// it the client gets 504. Default 30 s.
    public var upstreamTimeout: TimeAmount
    /// How long the upstream may stay silent while it sends a response body; past it the
    /// exchange is abandoned (the client connection is closed if the response had started,
    /// else it gets 504). Default 60 s, as nginx's `proxy_read_timeout`.
    public var upstreamReadTimeout: TimeAmount
    /// Most connections to the upstream per event loop (so, per core). Default 256.
    public var upstreamMaxConnections: Int
    /// Most requests per event loop waiting for an upstream connection when all
    /// ``upstreamMaxConnections`` are busy; past it the client gets 503. Default 1024.
    public var upstreamMaxWaiting: Int
    /// Forward the client's `Host` header unchanged (true) or replace it with the upstream's
    /// host:port (false). Default true.
    public var preserveHost: Bool
    /// Limits and timeouts for client connections.
    public var client: ClientSettings
    /// Whether error responses (502, 503, 504) carry the upstream's address and the OS error
    /// text. Default false: they name the route only; the log line always has the detail.
    public var errorDetail: Bool
    /// The Redis that holds the cache.
    public var redis: RedisSettings
    /// Route settings used where a route gives none.
    public var defaults: RouteDefaults
    /// The cached routes, first match in file order wins. Requests matching none are forwarded uncached.
    public var routes: [Route]
    /// Write routes whose successful responses purge tags, first match in file order wins.
    public var invalidate: [InvalidationRule]
    /// Where entries get tags from besides their route.
    public var tags: TagSettings
    /// The admin listener (purge API) and the `PURGE` method; off by default.
    public var admin: AdminSettings
    /// The in-memory tier in front of Redis.
    public var memory: MemorySettings

    /// Creates a configuration; see the properties for the defaults.
    public init(
        listen: HostAndPort,
        upstream: UpstreamURL,
        upstreamTimeout: TimeAmount = .seconds(30),
        upstreamReadTimeout: TimeAmount = .seconds(60),
        upstreamMaxConnections: Int = 256,
        upstreamMaxWaiting: Int = 1024,
        preserveHost: Bool = true,
        client: ClientSettings = ClientSettings(),
        errorDetail: Bool = false,
        redis: RedisSettings,
        defaults: RouteDefaults = RouteDefaults(),
        routes: [Route] = [],
        invalidate: [InvalidationRule] = [],
        tags: TagSettings = TagSettings(),
        admin: AdminSettings = AdminSettings(),
        memory: MemorySettings = MemorySettings()
    ) {
        self.listen = listen
        self.upstream = upstream
        self.upstreamTimeout = upstreamTimeout
        self.upstreamReadTimeout = upstreamReadTimeout
        self.upstreamMaxConnections = upstreamMaxConnections
        self.upstreamMaxWaiting = upstreamMaxWaiting
        self.preserveHost = preserveHost
        self.client = client
        self.errorDetail = errorDetail
        self.redis = redis
        self.defaults = defaults
        self.routes = routes
        self.invalidate = invalidate
        self.tags = tags
        self.admin = admin
        self.memory = memory
    }
}

/// Limits and timeouts for client connections; the defaults follow nginx where it has one.
public struct ClientSettings: Sendable, Hashable {
    /// How long a client may take to send a request head once it has started one (and a new
    /// connection to start its first). Past it: 408 and the connection is closed. Default 10 s.
    public var headerTimeout: TimeAmount
    /// How long a client may stay silent while it sends a request body. Past it: 408 (or a
    /// close, if the response has started). Default 30 s.
    public var bodyTimeout: TimeAmount
    /// An idle keep-alive connection (no request in progress) is closed after this. Default 75 s.
    public var keepAliveTimeout: TimeAmount
    /// Longest request line; past it: 414. Default 8192 bytes.
    public var maxRequestLineBytes: Int
    /// Most bytes of request header lines; past it: 431. Default 32768.
    public var maxHeaderBytes: Int
    /// Most request header fields; past it: 431. Default 100.
    public var maxHeaderCount: Int
    /// Most requests read ahead (pipelined) behind the one being answered; past it the proxy
    /// stops reading from the connection until it catches up. Default 16.
    public var maxPipelinedRequests: Int

    /// Creates client settings; see the properties for the defaults.
    public init(
        headerTimeout: TimeAmount = .seconds(10), bodyTimeout: TimeAmount = .seconds(30), keepAliveTimeout: TimeAmount = .seconds(75),
        maxRequestLineBytes: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaderCount: Int = 100, maxPipelinedRequests: Int = 16
    ) {
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxPipelinedRequests = maxPipelinedRequests
    }

    var parserLimits: HTTPRequestParser.Limits {
        .init(maxRequestLineBytes: maxRequestLineBytes, maxHeaderBytes: maxHeaderBytes, maxHeaderCount: maxHeaderCount)
    }
}

/// A host and a TCP port, e.g. `127.0.0.1:8080` or `[::1]:8080`.
public struct HostAndPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address, without brackets.
    public var host: String
    /// TCP port; 0 asks the system for a free one.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// The upstream API's base URL: `http://host[:port]`. Only plain HTTP.
public struct UpstreamURL: Sendable, Hashable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port. Default 80.
    public var port: Int

    /// Creates an upstream address.
    public init(host: String, port: Int = 80) {
        self.host = host
        self.port = port
    }

    /// The value of a `Host` header naming the upstream.
    public var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == 80 ? name : "\(name):\(port)"
    }

    public var description: String { "http://\(HostAndPort(host: host, port: port))" }
}

/// How the proxy uses Redis.
public struct RedisSettings: Sendable {
    /// The server, credentials and database.
    public var url: RedisURL
    /// Prepended to every key. Default `cache-proxy:`.
    public var keyPrefix: String
    /// Per-command timeout; past it the request goes to the upstream. Default 50 ms.
    public var timeout: TimeAmount
    /// How long a purge (by an invalidation rule or the admin API) may take. A write's response
    /// waits for its purge up to this long; past it the response is sent and a warning logged.
    /// Default 1 s.
    public var purgeTimeout: TimeAmount

    /// Creates Redis settings; see the properties for the defaults.
    public init(
        url: RedisURL, keyPrefix: String = "cache-proxy:", timeout: TimeAmount = .milliseconds(50), purgeTimeout: TimeAmount = .seconds(1)
    ) {
        self.url = url
        self.keyPrefix = keyPrefix
        self.timeout = timeout
        self.purgeTimeout = purgeTimeout
    }
}

/// Settings every route inherits unless it sets its own.
public struct RouteDefaults: Sendable {
    /// How long a stored response is served. Default 30 s.
    public var ttl: TimeAmount
    /// Largest response body that is stored; larger ones stream through uncached. It also
    /// bounds the request body read to compute a key. Default 1 MiB.
    public var maxBodyBytes: Int
    /// Response statuses that are stored. Default `[200]`. 400, 413, 414, 431 and 5xx are never
    /// stored, even when listed (cache-poisoned denial of service).
    public var statuses: Set<Int>
    /// Lower-cased request headers that make a request on a cached route bypass the cache:
    /// headers some frameworks read to rewrite the URL or method, which are not in the key.
    /// Default ``RouteDefaults/standardBypassHeaders``.
    public var bypassHeaders: Set<String>
    /// Serving past the TTL. Default: off.
    public var stale: StaleSettings
    /// How long a miss waits for a concurrent request's fetch of the same key before fetching
    /// itself; zero turns coalescing off. Default 5 s.
    public var coalesceTimeout: TimeAmount
    /// Coalesce across the instances sharing the Redis too (a fetch lease per key). Off, each
    /// instance coalesces alone: one round trip less per miss and less Redis work, but up to
    /// one origin fetch per instance for a cold key. Default true.
    public var coalesceAcrossInstances: Bool

    /// Headers that rewrite a request's URL or method in common frameworks (IIS, Symfony,
    /// Rails, Express method-override…).
    public static let standardBypassHeaders: Set<String> = [
        "x-original-url", "x-rewrite-url", "x-http-method-override", "x-http-method", "x-method-override",
        "x-host", "x-http-host-override", "x-original-host",
    ]

    /// Creates defaults; see the properties for their values.
    public init(
        ttl: TimeAmount = .seconds(30), maxBodyBytes: Int = 1 << 20, statuses: Set<Int> = [200],
        bypassHeaders: Set<String> = RouteDefaults.standardBypassHeaders, stale: StaleSettings = StaleSettings(),
        coalesceTimeout: TimeAmount = .seconds(5), coalesceAcrossInstances: Bool = true
    ) {
        self.ttl = ttl
        self.maxBodyBytes = maxBodyBytes
        self.statuses = statuses
        self.bypassHeaders = bypassHeaders
        self.stale = stale
        self.coalesceTimeout = coalesceTimeout
        self.coalesceAcrossInstances = coalesceAcrossInstances
    }

    /// Statuses never stored whatever the config says: an error caused by one client's request
    /// must not be served to everyone (CPDoS).
    public static func isNeverStored(_ status: Int) -> Bool {
        status == 400 || status == 413 || status == 414 || status == 431 || status >= 500
    }
}

/// One cached route.
///
/// A value type whose fields live in one shared, copy-on-write box: the request path copies
/// routes many times per request (the exchange, its states, the store target), and each copy
/// retained every set, array and string of the route; now a copy is one retain.
public struct Route: Sendable {
    /// The fields. Only mutated while uniquely referenced (``uniqueStorage()``), so sharing it
    /// between threads is safe.
    private final class Storage: @unchecked Sendable {
        var name: String
        var path: PathPattern
        var methods: Set<String>
        var ttl: TimeAmount
        var query: QuerySelection
        var vary: [String]
        var statuses: Set<Int>
        var maxBodyBytes: Int
        var bypassHeaders: Set<String>
        var tags: [TagTemplate]
        var bodyKey: BodyKey
        var stale: StaleSettings
        var coalesceTimeout: TimeAmount
        var coalesceAcrossInstances: Bool

        init(path: PathPattern) {
            self.name = ""
            self.path = path
            self.methods = []
            self.ttl = .zero
            self.query = .all
            self.vary = []
            self.statuses = []
            self.maxBodyBytes = 0
            self.bypassHeaders = []
            self.tags = []
            self.bodyKey = .raw
            self.stale = StaleSettings()
            self.coalesceTimeout = .zero
            self.coalesceAcrossInstances = false
        }

        func copy() -> Storage {
            let copy = Storage(path: path)
            copy.name = name
            copy.methods = methods
            copy.ttl = ttl
            copy.query = query
            copy.vary = vary
            copy.statuses = statuses
            copy.maxBodyBytes = maxBodyBytes
            copy.bypassHeaders = bypassHeaders
            copy.tags = tags
            copy.bodyKey = bodyKey
            copy.stale = stale
            copy.coalesceTimeout = coalesceTimeout
            copy.coalesceAcrossInstances = coalesceAcrossInstances
            return copy
        }
    }

    private var storage: Storage

    private mutating func uniqueStorage() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    /// A short name for logs and metrics. Default: the path pattern.
    public var name: String {
        get { storage.name }
        set { uniqueStorage().name = newValue }
    }
    /// Which paths the route matches.
    public var path: PathPattern {
        get { storage.path }
        set { uniqueStorage().path = newValue }
    }
    /// Methods whose responses are cached. Default `[GET, HEAD]`. A HEAD request is answered
    /// from the GET entry.
    public var methods: Set<String> {
        get { storage.methods }
        set { uniqueStorage().methods = newValue }
    }
    /// How long a stored response is served.
    public var ttl: TimeAmount {
        get { storage.ttl }
        set { uniqueStorage().ttl = newValue }
    }
    /// Which query parameters enter the key.
    public var query: QuerySelection {
        get { storage.query }
        set { uniqueStorage().query = newValue }
    }
    /// Lower-cased names of request headers whose values enter the key. Listing
    /// `authorization` or `cookie` here is what allows caching requests that carry them.
    public var vary: [String] {
        get { storage.vary }
        set { uniqueStorage().vary = newValue }
    }
    /// Response statuses that are stored.
    public var statuses: Set<Int> {
        get { storage.statuses }
        set { uniqueStorage().statuses = newValue }
    }
    /// Largest response (and request) body that is stored.
    public var maxBodyBytes: Int {
        get { storage.maxBodyBytes }
        set { uniqueStorage().maxBodyBytes = newValue }
    }
    /// Lower-cased request headers whose presence bypasses the cache on this route.
    public var bypassHeaders: Set<String> {
        get { storage.bypassHeaders }
        set { uniqueStorage().bypassHeaders = newValue }
    }
    /// Tags stored with each entry besides the route's name (and the origin's, see ``TagSettings``).
    public var tags: [TagTemplate] {
        get { storage.tags }
        set { uniqueStorage().tags = newValue }
    }
    /// How the request body enters the key.
    public var bodyKey: BodyKey {
        get { storage.bodyKey }
        set { uniqueStorage().bodyKey = newValue }
    }
    /// Serving past the TTL.
    public var stale: StaleSettings {
        get { storage.stale }
        set { uniqueStorage().stale = newValue }
    }
    /// How long a miss waits for a concurrent fetch of its key (coalescing); zero: off.
    public var coalesceTimeout: TimeAmount {
        get { storage.coalesceTimeout }
        set { uniqueStorage().coalesceTimeout = newValue }
    }
    /// Coalescing across instances (the fetch lease), not only within this one.
    public var coalesceAcrossInstances: Bool {
        get { storage.coalesceAcrossInstances }
        set { uniqueStorage().coalesceAcrossInstances = newValue }
    }

    /// Creates a route; unset settings come from `defaults`.
    public init(
        name: String? = nil,
        path: PathPattern,
        methods: Set<String> = ["GET", "HEAD"],
        ttl: TimeAmount? = nil,
        query: QuerySelection = .all,
        vary: [String] = [],
        statuses: Set<Int>? = nil,
        maxBodyBytes: Int? = nil,
        bypassHeaders: Set<String>? = nil,
        tags: [TagTemplate] = [],
        bodyKey: BodyKey = .raw,
        stale: StaleSettings? = nil,
        coalesceTimeout: TimeAmount? = nil,
        coalesceAcrossInstances: Bool? = nil,
        defaults: RouteDefaults = RouteDefaults()
    ) {
        self.storage = Storage(path: path)
        self.name = name ?? path.description
        self.path = path
        self.methods = methods
        self.ttl = ttl ?? defaults.ttl
        self.query = query
        self.vary = vary.map { $0.lowercased() }
        self.statuses = statuses ?? defaults.statuses
        self.maxBodyBytes = maxBodyBytes ?? defaults.maxBodyBytes
        self.bypassHeaders = Set((bypassHeaders ?? defaults.bypassHeaders).map { $0.lowercased() })
        self.tags = tags
        self.bodyKey = bodyKey
        self.stale = stale ?? defaults.stale
        self.coalesceTimeout = coalesceTimeout ?? defaults.coalesceTimeout
        self.coalesceAcrossInstances = coalesceAcrossInstances ?? defaults.coalesceAcrossInstances
    }
}

/// How long past its TTL an entry may still be served (RFC 5861's two extensions, set by the
/// config rather than by the origin). An entry is kept in Redis for its TTL plus the longer of
/// the two windows.
public struct StaleSettings: Sendable, Hashable {
    /// Past the TTL by at most this, an entry is served at once (`X-Cache: STALE`) while one
    /// background fetch replaces it. Default 0: off.
    public var whileRevalidate: TimeAmount
    /// Past the TTL by at most this, an entry is served instead of an origin failure (refused,
    /// timed out, closed early, or a status in ``ifErrorStatuses``). Default 0: off.
    public var ifError: TimeAmount
    /// The origin statuses that count as failures for ``ifError``. Default 500, 502, 503, 504.
    public var ifErrorStatuses: Set<Int>

    /// Creates stale settings; see the properties for the defaults.
    public init(whileRevalidate: TimeAmount = .zero, ifError: TimeAmount = .zero, ifErrorStatuses: Set<Int> = [500, 502, 503, 504]) {
        self.whileRevalidate = whileRevalidate
        self.ifError = ifError
        self.ifErrorStatuses = ifErrorStatuses
    }

    /// How long past the TTL an entry is kept: the longer window, in milliseconds.
    public var graceMilliseconds: Int64 {
        max(whileRevalidate.nanoseconds, ifError.nanoseconds) / 1_000_000
    }
}

/// How a route's request body enters the cache key.
public enum BodyKey: Sendable, Hashable {
    /// A SHA-256 of the bytes as sent (the default): any difference is a different entry.
    case raw
    /// A SHA-256 of the body's RFC 8785 canonical form, restricted to some top-level fields:
    /// key order and whitespace do not split entries. A body that is not JSON (or, with a
    /// field selection, not a JSON object) is forwarded uncached.
    case json(JSONFieldSelection)
}

/// Which top-level fields of a JSON body enter the key.
public enum JSONFieldSelection: Sendable, Hashable {
    /// The whole body.
    case all
    /// Only these fields (`fields: [nick_name]`).
    case only(Set<String>)
    /// Every field but these (`ignore: [request_id]`).
    case ignoring(Set<String>)
}

/// A write route whose successful responses purge tags: `invalidate:` in the config.
public struct InvalidationRule: Sendable {
    /// For logs. Default: the methods and path.
    public var name: String
    /// Which paths the rule matches.
    public var path: PathPattern
    /// Methods it applies to. Default `[POST, PUT, PATCH, DELETE]`.
    public var methods: Set<String>
    /// Response statuses that trigger the purge; nil means every 2xx (the default).
    public var statuses: Set<Int>?
    /// The tags to purge; request placeholders only (`{body.…}`, `{query.…}`, `{path.N}`).
    public var purge: [TagTemplate]
    /// Mark the entries stale instead of deleting them. Default false.
    public var soft: Bool
    /// Largest request body read for `{body.…}` placeholders; a larger body fills none (and a
    /// warning is logged). Default: `defaults.max_body_bytes`.
    public var maxBodyBytes: Int

    /// Creates a rule; see the properties for the defaults.
    public init(
        name: String? = nil, path: PathPattern, methods: Set<String> = ["POST", "PUT", "PATCH", "DELETE"], statuses: Set<Int>? = nil,
        purge: [TagTemplate], soft: Bool = false, maxBodyBytes: Int = 1 << 20
    ) {
        self.name = name ?? "\(methods.sorted().joined(separator: ",")) \(path)"
        self.path = path
        self.methods = methods
        self.statuses = statuses
        self.purge = purge
        self.soft = soft
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether a response with `status` triggers the purge.
    public func triggers(status: Int) -> Bool {
        statuses.map { $0.contains(status) } ?? (200..<300).contains(status)
    }

    /// Whether the rule reads the request body.
    var readsBody: Bool {
        purge.contains { $0.sources.contains { if case .body = $0 { return true } else { return false } } }
    }
}

/// Tags that come from the origin.
public struct TagSettings: Sendable, Hashable {
    /// Lower-cased response header whose tags are stored with the entry, split on spaces and
    /// commas (`Surrogate-Key: a b`, `Cache-Tag: a,b`); nil turns it off. Default `surrogate-key`.
    public var responseHeader: String?
    /// Remove that header from responses to clients. Default true.
    public var stripResponseHeader: Bool

    /// Creates tag settings; see the properties for the defaults.
    public init(responseHeader: String? = "surrogate-key", stripResponseHeader: Bool = true) {
        self.responseHeader = responseHeader?.lowercased()
        self.stripResponseHeader = stripResponseHeader
    }
}

/// The purge API: a separate listener, and optionally the `PURGE` method on the main one.
public struct AdminSettings: Sendable, Hashable {
    /// Where the admin API listens; nil (the default) turns it off.
    public var listen: HostAndPort?
    /// The bearer token every admin request (and `PURGE`) must carry; required unless the
    /// listener is on a loopback address.
    public var token: String?
    /// Accept `PURGE <url>` on the main listener (with the token). Default false.
    public var purgeMethod: Bool

    /// Creates admin settings; see the properties for the defaults.
    public init(listen: HostAndPort? = nil, token: String? = nil, purgeMethod: Bool = false) {
        self.listen = listen
        self.token = token
        self.purgeMethod = purgeMethod
    }
}

/// The in-memory tier: fresh entries kept in the proxy's own memory, in front of Redis, and
/// dropped when Redis says they changed (see ``MemoryCache``).
public struct MemorySettings: Sendable, Hashable {
    /// The bound on the bytes the tier holds (bodies, headers and per-entry overhead); 0 turns
    /// the tier off. Default 64 MiB.
    public var maxBytes: Int
    /// Entries larger than this stay in Redis only. Default 1 MiB.
    public var maxEntryBytes: Int

    /// Creates memory settings; see the properties for the defaults.
    public init(maxBytes: Int = 64 << 20, maxEntryBytes: Int = 1 << 20) {
        self.maxBytes = maxBytes
        self.maxEntryBytes = maxEntryBytes
    }
}

/// The query parameters that enter a route's cache key.
public enum QuerySelection: Sendable, Hashable {
    /// Every parameter (the default).
    case all
    /// Only these names; others are ignored (they neither split nor bypass the cache).
    case only(Set<String>)
}
