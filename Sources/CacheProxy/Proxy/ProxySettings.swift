import NIOCore

/// What every connection's state machine needs from the configuration, computed once.
struct ProxySettings: Sendable {
    let policy: CachePolicy
    let normalizer: RequestNormalizer
    let client: ClientSettings
    /// Connect plus response head; past it: 504.
    let upstreamTimeout: TimeAmount
    /// Silence while the upstream sends a body; past it the exchange is abandoned.
    let upstreamReadTimeout: TimeAmount
    let preserveHost: Bool
    /// The `Host` value naming the upstream.
    let upstreamHost: String
    /// The upstream's URL, for error bodies when ``errorDetail`` is on.
    let upstreamDescription: String
    let errorDetail: Bool
    /// Request bytes kept so an idempotent request can be re-sent on a new connection. 1 MiB.
    let maxReplayBytes: Int
    /// Request bytes held while no upstream connection is ready, before reading pauses. 256 KiB.
    let maxPendingBytes: Int
    /// Bytes of pipelined requests held behind the current one, before reading pauses. 256 KiB.
    let maxQueuedBytes: Int
    /// Where origin tags come from.
    let tags: TagSettings
    /// Whether `PURGE` is answered on the main listener.
    let purgeMethod: Bool
    /// The admin bearer token, if one is configured.
    let adminToken: String?

    init(
        configuration: ProxyConfiguration, maxReplayBytes: Int = 1 << 20, maxPendingBytes: Int = 256 << 10, maxQueuedBytes: Int = 256 << 10
    ) {
        self.policy = CachePolicy(routes: configuration.routes, invalidate: configuration.invalidate)
        self.tags = configuration.tags
        self.purgeMethod = configuration.admin.purgeMethod
        self.adminToken = configuration.admin.token
        var protected: Set<String> = []
        for route in configuration.routes {
            protected.formUnion(route.vary)
            protected.formUnion(route.bypassHeaders)
        }
        self.normalizer = RequestNormalizer(protectedHeaders: protected)
        self.client = configuration.client
        self.upstreamTimeout = configuration.upstreamTimeout
        self.upstreamReadTimeout = configuration.upstreamReadTimeout
        self.preserveHost = configuration.preserveHost
        self.upstreamHost = configuration.upstream.hostHeader
        self.upstreamDescription = configuration.upstream.description
        self.errorDetail = configuration.errorDetail
        self.maxReplayBytes = maxReplayBytes
        self.maxPendingBytes = maxPendingBytes
        self.maxQueuedBytes = maxQueuedBytes
    }
}
