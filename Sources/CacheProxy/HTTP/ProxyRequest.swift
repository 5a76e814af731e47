import NIOCore
import NIOHTTP1

/// A client request after validation and normalization: the single value that both the cache
/// key and the upstream request are made from, so nothing can enter one and differ in the other.
///
/// Built by ``RequestNormalizer``. Its headers are the end-to-end headers only: hop-by-hop
/// headers, those the client's `Connection` names (except protected ones), framing headers,
/// `Expect` and the client's `X-Forwarded-*` and `Forwarded` are gone.
struct ProxyRequest: Sendable {
    /// The method, byte for byte as the client sent it (`M-SEARCH` stays `M-SEARCH`).
    var method: String
    /// The request target in origin-form (or `*`), with bytes outside RFC 3986 percent-encoded.
    var target: String
    /// The path part of ``target``.
    var path: Substring { target.firstIndex(of: "?").map { target[..<$0] } ?? target[...] }
    /// The query part of ``target``, without `?`; empty when there is none.
    var query: Substring { target.firstIndex(of: "?").map { target[target.index(after: $0)...] } ?? "" }
    var version: HTTPVersion
    /// End-to-end request headers (see the type's documentation).
    var headers: HTTPHeaders
    /// The `Host` header's value (or the absolute-form target's authority); nil on an HTTP/1.0
    /// request without one.
    var host: String?
    /// Whether the client wants the connection kept open after the response.
    var keepAlive: Bool
    /// How the client delimits the body.
    var framing: HTTPRequestParser.Framing
    /// Whether the client asked for `100 Continue` before sending its body.
    var expectsContinue: Bool

    /// The method for NIO's encoder, which writes `rawValue`: `HTTPMethod(rawValue:)` maps a
    /// known name to its case and anything else (`M-SEARCH`) to `.RAW`, so the bytes round-trip.
    var httpMethod: HTTPMethod { HTTPMethod(rawValue: method) }

    var isHead: Bool { method == "HEAD" }

    /// Whether the method is idempotent (RFC 9110 §9.2.2), so a request that may have reached
    /// the upstream can be sent again.
    var isIdempotent: Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": return true
        default: return false
        }
    }

    /// Whether a request without a body still announces `Content-Length: 0` upstream: methods
    /// whose servers commonly expect a length.
    var announcesEmptyBody: Bool {
        method == "POST" || method == "PUT" || method == "PATCH"
    }
}

extension ProxyRequest {
    /// Headers that would make the origin answer a cache fill with something other than the
    /// full representation (a 304 for one client's validator, a 206 for one client's range).
    /// A fetch whose answer is for the cache goes without them; the client still gets a valid
    /// full answer.
    static let cacheFillStrippedHeaders = ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range", "range"]

    static func removeCacheFillHeaders(_ head: inout HTTPRequestHead) {
        for name in cacheFillStrippedHeaders where head.headers.contains(name: name) { head.headers.remove(name: name) }
    }
}

/// How the proxy frames the body it sends upstream; always derived by the proxy, never copied.
enum UpstreamFraming: Hashable, Sendable {
    /// No body and no framing header.
    case none
    /// `Content-Length: n` (the whole body is known, or the client gave a length).
    case length(Int)
    /// `Transfer-Encoding: chunked` (streamed body of unknown length).
    case chunked
}

extension ProxyRequest {
    /// The request head sent upstream: the end-to-end headers, `Host` (kept or replaced),
    /// `X-Forwarded-For`/`-Proto`/`-Host` and `Forwarded` set by the proxy, and the framing the
    /// proxy chose.
    ///
    /// - Parameters:
    ///   - clientAddress: the client's IP address, if known.
    ///   - upstreamHost: the `Host` value naming the upstream, used when `preserveHost` is false
    ///     or the client sent none.
    func upstreamHead(framing: UpstreamFraming, clientAddress: String?, preserveHost: Bool, upstreamHost: String) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(self.headers.count + 6)
        let forwardedHost = host
        headers.add(name: "host", value: preserveHost ? (forwardedHost ?? upstreamHost) : upstreamHost)
        for (name, value) in self.headers {
            headers.add(name: name, value: value)
        }
        var forwarded: [String] = []
        if let clientAddress {
            headers.add(name: "x-forwarded-for", value: clientAddress)
            forwarded.append("for=" + (clientAddress.contains(":") ? "\"[\(clientAddress)]\"" : clientAddress))
        }
        if let forwardedHost {
            headers.add(name: "x-forwarded-host", value: forwardedHost)
            forwarded.append("host=\"\(forwardedHost)\"")
        }
        headers.add(name: "x-forwarded-proto", value: "http")
        forwarded.append("proto=http")
        headers.add(name: "forwarded", value: forwarded.joined(separator: ";"))
        switch framing {
        case .none: break
        case .length(let length): headers.add(name: "content-length", value: String(length))
        case .chunked: headers.add(name: "transfer-encoding", value: "chunked")
        }
        return HTTPRequestHead(version: .http1_1, method: httpMethod, uri: target, headers: headers)
    }
}
