import Crypto
import NIOCore
import NIOHTTP1

/// The pure decisions of the cache: whether a request may be answered from the cache, and
/// whether a response may be stored. No I/O, no clock.
public struct CachePolicy: Sendable {
    /// The routes, first match wins.
    public let routes: [Route]
    /// The invalidation rules, first match wins.
    public let invalidate: [InvalidationRule]

    /// Creates a policy over `routes` and `invalidate` rules.
    public init(routes: [Route], invalidate: [InvalidationRule] = []) {
        self.routes = routes
        self.invalidate = invalidate
    }

    /// The invalidation rule of a request that is not looked up, if one matches.
    func invalidationRule(for request: ProxyRequest) -> InvalidationRule? {
        invalidate.first { $0.methods.contains(request.method) && $0.path.matches(request.path) }
    }

    /// What a purge of `url` (origin-form, or absolute `http://host/path?query`) removes: the
    /// entries of its path and query, normalized as the route that caches it keys them. Every
    /// method, body and header variant goes, on every host.
    public func purgeSelector(url: String) -> PurgeSelector {
        var target = Substring(url)
        if let scheme = target.range(of: "://") {
            let rest = target[scheme.upperBound...]
            target = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let hash = target.firstIndex(of: "#") { target = target[..<hash] }
        let path = target.firstIndex(of: "?").map { target[..<$0] } ?? target
        let query = target.firstIndex(of: "?").map { target[target.index(after: $0)...] } ?? ""
        let selection = routes.first { $0.path.matches(path) }?.query ?? .all
        return .url(CacheIndexName.url(path: path, query: QueryString.normalized(query, keeping: selection)))
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

    /// A request's key, or why it has none.
    enum KeyDecision {
        /// The key; `json` is the parsed body on a `body_key: json` route.
        case key(CacheKey, json: JSONValue?)
        case bypass(BypassReason)
    }

    /// The key of a request that ``decide(_:)`` sent to lookup, once its body is known. Made from
    /// the same ``ProxyRequest`` as the upstream request.
    func key(for request: ProxyRequest, route: Route, lookupMethod: String, body: ByteBuffer) -> KeyDecision {
        let vary = route.vary.map { name in
            let values = request.headers[name]
            return CacheKey.VaryValue(name: name, value: values.isEmpty ? nil : values.joined(separator: ", "))
        }
        var bodyDigest: String?
        var json: JSONValue?
        switch route.bodyKey {
        case .raw:
            bodyDigest = CacheKey.digest(ofBody: body)
        case .json(let selection):
            if body.readableBytes > 0 {
                guard let value = try? JSONValue.parse(body), let selected = Self.select(selection, from: value) else {
                    return .bypass(.bodyNotJSON)
                }
                json = value
                // "jcs:" keeps a canonical digest apart from any raw one.
                bodyDigest = "jcs:" + SHA256.hash(data: CanonicalJSON.serialize(selected)).hexString
            }
        }
        let key = CacheKey(
            method: lookupMethod,
            host: request.host ?? "",
            path: String(request.path),
            query: QueryString.normalized(request.query, keeping: route.query),
            bodyDigest: bodyDigest,
            vary: vary)
        return .key(key, json: json)
    }

    /// The part of a JSON body that enters the key; nil when a field selection meets a body
    /// that is not an object.
    static func select(_ selection: JSONFieldSelection, from value: JSONValue) -> JSONValue? {
        switch selection {
        case .all:
            return value
        case .only(let names):
            guard case .object(let members) = value else { return nil }
            return .object(members.filter { names.contains($0.key) })
        case .ignoring(let names):
            guard case .object(let members) = value else { return nil }
            return .object(members.filter { !names.contains($0.key) })
        }
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
