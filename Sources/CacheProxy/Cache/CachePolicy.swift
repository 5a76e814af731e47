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

    /// Decides from the request head whether the cache may answer it.
    public func decide(_ head: HTTPRequestHead) -> RequestDecision {
        let (path, _) = Self.splitURI(head.uri)
        guard let route = routes.first(where: { $0.path.matches(path) }) else {
            return .bypass(.noRoute)
        }
        let method = head.method.rawValue
        guard route.methods.contains(method) else { return .bypass(.method) }
        if head.headers.contains(name: "upgrade") { return .bypass(.upgrade) }
        if head.headers.contains(name: "authorization"), !route.vary.contains("authorization") {
            return .bypass(.authorization)
        }
        if head.headers.contains(name: "cookie"), !route.vary.contains("cookie") {
            return .bypass(.cookie)
        }
        return .lookup(route: route, lookupMethod: method == "HEAD" ? "GET" : method)
    }

    /// The key of a request that ``decide(_:)`` sent to lookup, once its body is known.
    public func key(for head: HTTPRequestHead, route: Route, lookupMethod: String, body: ByteBuffer) -> CacheKey {
        let (path, query) = Self.splitURI(head.uri)
        let vary = route.vary.map { name in
            let values = head.headers[name]
            return CacheKey.VaryValue(name: name, value: values.isEmpty ? nil : values.joined(separator: ", "))
        }
        return CacheKey(
            method: lookupMethod,
            host: head.headers.first(name: "host") ?? "",
            path: String(path),
            query: QueryString.normalized(query, keeping: route.query),
            bodyDigest: CacheKey.digest(ofBody: body),
            vary: vary)
    }

    /// Whether a response may be stored, judged from its head (the body size is checked as it
    /// arrives). Returns nil when it may, else the reason it may not.
    public func notStoredReason(requestMethod: String, response: HTTPResponseHead, route: Route) -> NotStoredReason? {
        if requestMethod == "HEAD" { return .headRequest }
        guard route.statuses.contains(Int(response.status.code)) else { return .status }
        if response.headers.contains(name: "set-cookie") { return .setCookie }
        for directive in Self.cacheControlDirectives(response.headers) {
            switch directive {
            case "no-store": return .noStore
            case "private": return .privateResponse
            case "no-cache": return .noCache
            default: continue
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

    /// Splits a request target into path and query (without `?`); the fragment, if any, is dropped.
    static func splitURI(_ uri: String) -> (path: Substring, query: Substring) {
        var target = Substring(uri)
        if let hash = target.firstIndex(of: "#") { target = target[..<hash] }
        // An absolute-form target (`http://host/path`) is reduced to its path.
        if target.hasPrefix("http://") || target.hasPrefix("https://") {
            let afterScheme = target[target.index(target.firstIndex(of: ":")!, offsetBy: 3)...]
            target = afterScheme.firstIndex(of: "/").map { afterScheme[$0...] } ?? "/"
        }
        guard let question = target.firstIndex(of: "?") else { return (target, "") }
        return (target[..<question], target[target.index(after: question)...])
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
