import NIOHTTP1

/// Turns a parsed request head into a ``ProxyRequest``, or refuses it. Pure.
///
/// The rules (the README's request-handling table says the same):
/// - **Host**: exactly one on HTTP/1.1 (missing or repeated: 400), syntactically a host with an
///   optional port. An absolute-form target (`GET http://a/x`) is rewritten to origin-form when
///   its authority equals Host, refused (400) when it differs. A fragment (`#`) is refused.
/// - **Target**: origin-form (`/…`), or `*` for OPTIONS. Bytes RFC 3986 does not allow in a path
///   or query (`{ } | \ ^ < > " [ ]` and non-ASCII) are percent-encoded; the key and the upstream
///   both use the result.
/// - **Connection**: `close`/`keep-alive` decide persistence; every other token removes the header
///   it names, unless that header is protected (`Host`, `Content-Length`, `Transfer-Encoding`, and
///   every header the cache reads: `vary` headers, `Authorization`, `Cookie`, bypass headers).
/// - **Hop-by-hop** headers, framing headers, `Expect`, and the client's `X-Forwarded-*` and
///   `Forwarded` are removed; the proxy sets its own.
/// - **Expect**: `100-continue` is answered by the proxy; any other expectation gets 417.
/// - **Upgrade**: `h2c` is ignored (the request is served as HTTP/1.1); any other protocol gets
///   501. **CONNECT** gets 501.
struct RequestNormalizer: Sendable {
    /// Headers a `Connection` token never removes.
    let protectedHeaders: Set<String>

    /// Always protected, whatever the configuration.
    static let alwaysProtected: Set<String> = ["host", "content-length", "transfer-encoding", "authorization", "cookie"]

    /// Connection-specific headers (RFC 9110 §7.6.1), plus `HTTP2-Settings` (h2c upgrades).
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "http2-settings",
    ]

    /// Never forwarded as the client sent them: hop-by-hop, framing (re-derived), `Expect`
    /// (answered here), `Host` (set again) and `Forwarded` (the proxy's own).
    static let removed: Set<String> = hopByHop.union(["content-length", "expect", "forwarded", "host"])

    /// - Parameter protectedHeaders: lower-cased names, added to ``alwaysProtected``.
    init(protectedHeaders: Set<String> = []) {
        self.protectedHeaders = Self.alwaysProtected.union(protectedHeaders)
    }

    func normalize(_ head: HTTPRequestParser.Head) throws(RequestRejection) -> ProxyRequest {
        if head.method == "CONNECT" {
            throw RequestRejection(.connectMethod, "CONNECT is not supported by a reverse proxy")
        }
        let hosts = head.headers["host"]
        if hosts.count > 1 { throw RequestRejection(.duplicateHost, "more than one Host header") }
        var host = hosts.first
        if let host, !Self.isValidHost(host) { throw RequestRejection(.badHost, "Host is not a host[:port]") }
        if host == nil, head.version.minor >= 1 { throw RequestRejection(.missingHost, "HTTP/1.1 request without Host") }

        var target = head.target
        if target.utf8.contains(UInt8(ascii: "#")) {
            throw RequestRejection(.fragmentInTarget, "the request target has a fragment (#)")
        }
        if target.utf8.first != UInt8(ascii: "/") {
            if target == "*" {
                guard head.method == "OPTIONS" else { throw RequestRejection(.badTarget, "* is only a target for OPTIONS") }
            } else if let (authority, rest) = Self.splitAbsoluteForm(target) {
                guard Self.isValidHost(authority) else { throw RequestRejection(.badTarget, "bad authority in an absolute-form target") }
                if let host, host.lowercased() != authority.lowercased() {
                    throw RequestRejection(.hostMismatch, "the absolute-form target names another host than Host")
                }
                host = host ?? String(authority)
                target = rest
            } else {
                throw RequestRejection(.badTarget, "the request target is neither /path nor http://host/path")
            }
        }
        target = Self.percentEncodeDisallowed(target)

        var tokens: [String] = []
        for value in head.headers["connection"] {
            for token in value.split(separator: ",") {
                let trimmed = token.trimmingCharacters(in: " \t").lowercased()
                if !trimmed.isEmpty { tokens.append(trimmed) }
            }
        }
        let keepAlive = head.version.minor >= 1 ? !tokens.contains("close") : (tokens.contains("keep-alive") && !tokens.contains("close"))

        var expectsContinue = false
        for value in head.headers["expect"] {
            guard value.lowercased() == "100-continue" else {
                throw RequestRejection(.expectationFailed, "only Expect: 100-continue is supported")
            }
            expectsContinue = head.version.minor >= 1
        }
        if tokens.contains("upgrade") {
            let protocols = head.headers["upgrade"].flatMap { $0.split(separator: ",") }.map {
                $0.trimmingCharacters(in: " \t").lowercased()
            }
            if !protocols.allSatisfy({ $0 == "h2c" }) {
                throw RequestRejection(.upgradeUnsupported, "protocol upgrades (WebSocket and others) are not supported")
            }
        }

        let nominated = tokens.filter { !protectedHeaders.contains($0) && $0 != "close" && $0 != "keep-alive" }
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count)
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if Self.removed.contains(lower) || lower.hasPrefix("x-forwarded-") || (!nominated.isEmpty && nominated.contains(lower)) {
                continue
            }
            headers.add(name: name, value: value)
        }
        return ProxyRequest(
            method: head.method, target: target, version: head.version, headers: headers, host: host, keepAlive: keepAlive,
            framing: head.framing, expectsContinue: expectsContinue)
    }

    /// `(authority, origin-form rest)` of an `http://` or `https://` target, else nil.
    static func splitAbsoluteForm(_ target: String) -> (Substring, String)? {
        let lower = target.prefix(8).lowercased()
        let schemeLength: Int
        if lower.hasPrefix("http://") {
            schemeLength = 7
        } else if lower.hasPrefix("https://") {
            schemeLength = 8
        } else {
            return nil
        }
        let afterScheme = target.dropFirst(schemeLength)
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var rest = String(afterScheme[authorityEnd...])
        if !rest.hasPrefix("/") { rest = "/" + rest }
        return (authority, rest)
    }

    /// `host[:port]`: a DNS name or IPv4 address (letters, digits, `-`, `.`, `_`) or a bracketed
    /// IPv6 address, and a port from 0 to 65535. Stricter than RFC 3986's reg-name on purpose:
    /// no user info, no path, no sub-delims (`t.example,evil.example` is refused: a server that
    /// reads the forwarded host as a list would pick the second).
    static func isValidHost(_ value: some StringProtocol) -> Bool {
        var bytes = Substring(value).utf8[...]
        guard let first = bytes.first else { return false }
        if first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")) else { return false }
            let inside = bytes[bytes.index(after: bytes.startIndex)..<close]
            guard !inside.isEmpty,
                inside.allSatisfy({ UInt8.hexDigitValue($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
            else { return false }
            bytes = bytes[bytes.index(after: close)...]
        } else {
            let hostEnd = bytes.firstIndex(of: UInt8(ascii: ":")) ?? bytes.endIndex
            let name = bytes[..<hostEnd]
            guard !name.isEmpty, name.count <= 255, name.allSatisfy(isHostNameByte) else { return false }
            bytes = bytes[hostEnd...]
        }
        guard let colon = bytes.first else { return true }
        guard colon == UInt8(ascii: ":") else { return false }
        let port = bytes.dropFirst()
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
        return port.reduce(0) { $0 * 10 + Int($1 - 0x30) } <= 65535
    }

    private static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default: return false
        }
    }

    /// Percent-encodes every byte (of the Latin-1 target) that may not appear in a path or query.
    static func percentEncodeDisallowed(_ target: String) -> String {
        guard !target.unicodeScalars.allSatisfy({ $0.value < 0x80 && allowedInTarget[Int($0.value)] }) else { return target }
        var out = ""
        out.reserveCapacity(target.unicodeScalars.count + 16)
        let hex = Array("0123456789ABCDEF".unicodeScalars)
        for scalar in target.unicodeScalars {
            let value = scalar.value
            if value < 0x80, allowedInTarget[Int(value)] {
                out.unicodeScalars.append(scalar)
            } else {
                let byte = Int(value & 0xFF)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(hex[byte >> 4])
                out.unicodeScalars.append(hex[byte & 0x0F])
            }
        }
        return out
    }

    /// pchar, `/`, `?` and `%` (RFC 3986 §3.3, §3.4).
    private static let allowedInTarget: [Bool] = (0..<128).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default: return "-._~!$&'()*+,;=:@/?%".utf8.contains(UInt8(byte))
        }
    }
}
