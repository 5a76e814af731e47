import NIOCore
import NIOHTTP1

/// The pure decisions of the cache: whether a request may be answered from the cache, and
/// whether a response may be stored. No I/O, no clock.
public struct CachePolicy: Sendable {
    /// The routes, first match wins.
    public let routes: [Route]

    /// Creates a policy over `routes`.
    public init(routes: [Route]) {
        self.routes = routes
    }

    /// What to do with a request, decided from its head alone.
    public enum RequestDecision: Sendable {
        /// Forward it uncached.
        case bypass(BypassReason)
        /// Read the body (up to the route's `maxBodyBytes`), build the key, look it up.
        /// `lookupMethod` is `GET` for a HEAD request.
        case lookup(route: Route, lookupMethod: String)
    }

    /// Decides from the normalized request head whether the cache may answer it.
    func decide(_ request: ProxyRequest) -> RequestDecision {
        guard let route = routes.first(where: { $0.path.matches(request.path) }) else {
            return .bypass(.noRoute)
        }
        guard route.methods.contains(request.method) else { return .bypass(.method) }
        if !route.bypassHeaders.isEmpty, request.headers.contains(where: { route.bypassHeaders.contains($0.name.lowercased()) }) {
            return .bypass(.unkeyedHeader)
        }
        if request.headers.contains(name: "authorization"), !route.vary.contains("authorization") {
            return .bypass(.authorization)
        }
        if request.headers.contains(name: "cookie"), !route.vary.contains("cookie") {
            return .bypass(.cookie)
        }
        return .lookup(route: route, lookupMethod: request.isHead ? "GET" : request.method)
    }

    /// The key of a request that ``decide(_:)`` sent to lookup, once its body is known. Made from
    /// the same ``ProxyRequest`` as the upstream request.
    func key(for request: ProxyRequest, route: Route, lookupMethod: String, body: ByteBuffer) -> CacheKey {
        let vary = route.vary.map { name in
            let values = request.headers[name]
            return CacheKey.VaryValue(name: name, value: values.isEmpty ? nil : values.joined(separator: ", "))
        }
        return CacheKey(
            method: lookupMethod,
            host: request.host ?? "",
            path: String(request.path),
            query: QueryString.normalized(request.query, keeping: route.query),
            bodyDigest: CacheKey.digest(ofBody: body),
            vary: vary)
    }

    /// Whether a response may be stored, judged from its head (the body size is checked as it
    /// arrives). Returns nil when it may, else the reason it may not.
    public func notStoredReason(requestMethod: String, response: HTTPResponseHead, route: Route) -> NotStoredReason? {
        if requestMethod == "HEAD" { return .headRequest }
        let status = Int(response.status.code)
        guard route.statuses.contains(status), !RouteDefaults.isNeverStored(status) else { return .status }
        if response.headers.contains(name: "set-cookie") { return .setCookie }
        for directive in Self.cacheControlDirectives(response.headers) {
            switch directive {
            case "no-store": return .noStore
            case "private": return .privateResponse
            case "no-cache": return .noCache
            default: continue
            }
        }
        for value in response.headers["vary"] {
            for name in value.split(separator: ",") {
                let header = name.trimmingCharacters(in: " \t").lowercased()
                if header.isEmpty { continue }
                // `*` never matches; any other header must be part of the key.
                if header == "*" || !route.vary.contains(String(header)) { return .vary }
            }
        }
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > route.maxBodyBytes {
            return .tooLarge
        }
        return nil
    }

    /// Lower-cased directive names of every `Cache-Control` header (`private="x"` → `private`).
    static func cacheControlDirectives(_ headers: HTTPHeaders) -> [Substring] {
        headers["cache-control"].flatMap { value in
            value.split(separator: ",").map { directive in
                let name = directive.split(separator: "=", maxSplits: 1).first ?? ""
                return Substring(name.trimmingCharacters(in: " \t").lowercased())
            }
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        let characters = Set(set)
        var result = self
        while let first = result.first, characters.contains(first) { result = result.dropFirst() }
        while let last = result.last, characters.contains(last) { result = result.dropLast() }
        return result
    }
}
