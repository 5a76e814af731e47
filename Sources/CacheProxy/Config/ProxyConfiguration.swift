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
    /// Forward the client's `Host` header unchanged (true) or replace it with the upstream's
    /// host:port (false). Default true.
    public var preserveHost: Bool
    /// The Redis that holds the cache.
    public var redis: RedisSettings
    /// Route settings used where a route gives none.
    public var defaults: RouteDefaults
    /// The cached routes, first match in file order wins. Requests matching none are forwarded uncached.
    public var routes: [Route]

    /// Creates a configuration; see the properties for the defaults.
    public init(
        listen: HostAndPort,
        upstream: UpstreamURL,
        upstreamTimeout: TimeAmount = .seconds(30),
        preserveHost: Bool = true,
        redis: RedisSettings,
        defaults: RouteDefaults = RouteDefaults(),
        routes: [Route] = []
    ) {
        self.listen = listen
        self.upstream = upstream
        self.upstreamTimeout = upstreamTimeout
        self.preserveHost = preserveHost
        self.redis = redis
        self.defaults = defaults
        self.routes = routes
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

    /// Creates Redis settings; see the properties for the defaults.
    public init(url: RedisURL, keyPrefix: String = "cache-proxy:", timeout: TimeAmount = .milliseconds(50)) {
        self.url = url
        self.keyPrefix = keyPrefix
        self.timeout = timeout
    }
}

/// Settings every route inherits unless it sets its own.
public struct RouteDefaults: Sendable {
    /// How long a stored response is served. Default 30 s.
    public var ttl: TimeAmount
    /// Largest response body that is stored; larger ones stream through uncached. It also
    /// bounds the request body read to compute a key. Default 1 MiB.
    public var maxBodyBytes: Int
    /// Response statuses that are stored. Default `[200]`.
    public var statuses: Set<Int>

    /// Creates defaults; see the properties for their values.
    public init(ttl: TimeAmount = .seconds(30), maxBodyBytes: Int = 1 << 20, statuses: Set<Int> = [200]) {
        self.ttl = ttl
        self.maxBodyBytes = maxBodyBytes
        self.statuses = statuses
    }
}

/// One cached route.
public struct Route: Sendable {
    /// A short name for logs and metrics. Default: the path pattern.
    public var name: String
    /// Which paths the route matches.
    public var path: PathPattern
    /// Methods whose responses are cached. Default `[GET, HEAD]`. A HEAD request is answered
    /// from the GET entry.
    public var methods: Set<String>
    /// How long a stored response is served.
    public var ttl: TimeAmount
    /// Which query parameters enter the key.
    public var query: QuerySelection
    /// Lower-cased names of request headers whose values enter the key. Listing
    /// `authorization` or `cookie` here is what allows caching requests that carry them.
    public var vary: [String]
    /// Response statuses that are stored.
    public var statuses: Set<Int>
    /// Largest response (and request) body that is stored.
    public var maxBodyBytes: Int

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
        defaults: RouteDefaults = RouteDefaults()
    ) {
        self.name = name ?? path.description
        self.path = path
        self.methods = methods
        self.ttl = ttl ?? defaults.ttl
        self.query = query
        self.vary = vary.map { $0.lowercased() }
        self.statuses = statuses ?? defaults.statuses
        self.maxBodyBytes = maxBodyBytes ?? defaults.maxBodyBytes
    }
}

/// The query parameters that enter a route's cache key.
public enum QuerySelection: Sendable, Hashable {
    /// Every parameter (the default).
    case all
    /// Only these names; others are ignored (they neither split nor bypass the cache).
    case only(Set<String>)
}
