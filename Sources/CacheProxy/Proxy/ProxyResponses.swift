import NIOCore
import NIOHTTP1

/// The response heads and bodies the proxy writes. Pure: the state machine calls these, and
/// every framing header (`Content-Length`, `Transfer-Encoding`, `Connection`) is set here, never
/// copied from upstream (NIO's encoder runs with automatic framing off).
enum ProxyResponses {
    /// The head of a response served from the cache, as bytes: the status line, the entry's
    /// stored header block as it is, then `Content-Length`, `Age`, `X-Cache`, `Cache-Status` and,
    /// when needed, `Connection`. Stored blocks never hold those (see ``storedHeaders(_:)``).
    static func hit(_ entry: CacheEntry, request: ProxyRequest, outcome: CacheOutcome, keepAlive: Bool, now: Int64) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(entry.headerBlock.readableBytes + 192)
        ResponseWire.writeStatusLine(version: request.version, status: HTTPResponseStatus(statusCode: entry.status), into: &buffer)
        buffer.writeImmutableBuffer(entry.headerBlock)
        buffer.writeStaticString("content-length: ")
        ResponseWire.writeDecimal(entry.body.readableBytes, into: &buffer)
        buffer.writeStaticString("\r\nage: ")
        ResponseWire.writeDecimal(entry.age(now: now), into: &buffer)
        buffer.writeStaticString("\r\nx-cache: ")
        buffer.writeString(outcome.xCache)
        buffer.writeStaticString("\r\ncache-status: ")
        outcome.writeCacheStatus(into: &buffer)
        buffer.writeStaticString("\r\n")
        if !keepAlive {
            buffer.writeStaticString("connection: close\r\n")
        } else if request.version.minor == 0 {
            buffer.writeStaticString("connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The head of a forwarded response, and whether the connection can stay open after it (an
    /// HTTP/1.0 client without a length learns where the body ends by the close).
    ///
    /// - Parameter contentLength: the whole body's length when it is known (a buffered response);
    ///   nil when the body streams.
    static func forwarded(
        _ upstream: HTTPResponseHead, request: ProxyRequest, outcome: CacheOutcome, keepAlive: Bool, contentLength: Int?
    ) -> (head: HTTPResponseHead, keepAlive: Bool) {
        var headers = upstream.headers
        headers.removeHopByHop()
        headers.remove(name: "x-cache")
        var keepAlive = keepAlive
        let bodyless = request.isHead || !upstream.status.mayHaveResponseBody
        if let contentLength {
            headers.replaceOrAdd(name: "content-length", value: String(contentLength))
        } else if bodyless {
            // Keep an advertised Content-Length (HEAD, 304); nothing is framed.
            if !upstream.status.mayHaveResponseBody { headers.remove(name: "content-length") }
        } else if !headers.contains(name: "content-length") {
            if request.version.minor >= 1 {
                headers.add(name: "transfer-encoding", value: "chunked")
            } else {
                keepAlive = false
            }
        }
        headers.replaceOrAdd(name: "x-cache", value: outcome.xCache)
        headers.appendToList(name: "cache-status", value: outcome.cacheStatus)
        addConnectionHeader(&headers, keepAlive: keepAlive, version: request.version)
        return (HTTPResponseHead(version: request.version, status: upstream.status, headers: headers), keepAlive)
    }

    /// The headers stored with an entry: hop-by-hop, per-response and framing headers removed.
    static func storedHeaders(_ upstream: HTTPResponseHead) -> [(name: String, value: String)] {
        var headers = upstream.headers
        headers.removeHopByHop()
        for name in HTTPHeaders.perResponse { headers.remove(name: name) }
        headers.remove(name: "content-length")
        return headers.map { ($0.name, $0.value) }
    }

    /// A JSON error answer from the proxy itself.
    static func error(
        status: HTTPResponseStatus, json: String, version: HTTPVersion, outcome: CacheOutcome, keepAlive: Bool
    ) -> HTTPResponseHead {
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(json.utf8.count))])
        headers.add(name: "x-cache", value: outcome.xCache)
        headers.add(name: "cache-status", value: outcome.cacheStatus)
        addConnectionHeader(&headers, keepAlive: keepAlive, version: version)
        return HTTPResponseHead(version: version, status: status, headers: headers)
    }

    /// `{"error": message, "route": name}`, plus `"upstream"` and `"detail"` when `detail` is given.
    static func errorJSON(_ message: String, route: String?, upstream: String? = nil, detail: String? = nil) -> String {
        var fields = ["\"error\": \(jsonString(message))", "\"route\": \(route.map(jsonString) ?? "null")"]
        if let upstream { fields.append("\"upstream\": \(jsonString(upstream))") }
        if let detail { fields.append("\"detail\": \(jsonString(detail))") }
        return "{" + fields.joined(separator: ", ") + "}\n"
    }

    /// `Connection: close` when the connection ends after this response; `keep-alive` for an
    /// HTTP/1.0 client that asked to keep it; nothing otherwise.
    static func addConnectionHeader(_ headers: inout HTTPHeaders, keepAlive: Bool, version: HTTPVersion) {
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// `30s`, `500ms`.
    static func describe(_ amount: TimeAmount) -> String {
        let ms = amount.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
