import NIOCore
import NIOHTTP1
@testable import CacheProxy

/// Parses `raw` (a whole request head, CRLFs included) with the proxy's parser.
func parseHead(_ raw: String, limits: HTTPRequestParser.Limits = .init()) throws(RequestRejection) -> HTTPRequestParser.Head {
    var parser = HTTPRequestParser(limits: limits)
    var buffer = ByteBuffer(string: raw)
    guard case .head(let head) = try parser.next(&buffer) else { throw RequestRejection(.badRequestLine, "incomplete head in test") }
    return head
}

/// A normalized request built the way the proxy builds one: from bytes, through the parser and
/// the normalizer. `headers` are added after Host (none when `host` is nil).
func proxyRequest(
    _ method: String, _ target: String, headers: [(String, String)] = [], host: String? = "api", version: String = "HTTP/1.1",
    normalizer: RequestNormalizer = RequestNormalizer()
) throws(RequestRejection) -> ProxyRequest {
    var raw = "\(method) \(target) \(version)\r\n"
    if let host { raw += "Host: \(host)\r\n" }
    for (name, value) in headers { raw += "\(name): \(value)\r\n" }
    raw += "\r\n"
    return try normalizer.normalize(parseHead(raw))
}
