import NIOCore
import NIOHTTP1
import PropertyBased
import Testing
@testable import CacheProxy

/// Random request heads and random key inputs, a few thousand of each (a few seconds in all).
@Suite struct RequestPropertyTests {
    // MARK: The parser and the normalizer

    static let methods = ["GET", "POST", "M-SEARCH", "G T", "", "OPTIONS", "CONNECT", "get"]
    static let targets = ["/", "/a?b=1&c={x}", "http://h/x", "http://other/x", "/a#f", "*", "/{x}|\\", "a", "/caf\u{E9}", "/a b"]
    static let versions = ["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.1 "]
    static let names = [
        "Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "X-A", "X A", "", " X-Fold", "Expect", "Upgrade",
        "X-Forwarded-For", "Accept-Language",
    ]
    static let values = [
        "h", "5", "0", "chunked", "close", "content-length, x-a", "a\u{0}b", " v ", "5, 6", "x\ry", "100-continue", "h2c", "upgrade",
        "fr", "\u{E9}",
    ]
    static let lineEnds = ["\r\n", "\r\n", "\r\n", "\n"]

    static let headGenerator = zip(
        Gen.element(of: methods).map { $0! }, Gen.element(of: targets).map { $0! }, Gen.element(of: versions).map { $0! },
        zip(Gen.element(of: names).map { $0! }, Gen.element(of: values).map { $0! }, Gen.element(of: lineEnds).map { $0! }).array(of: 0...7)
    ).map { (parts: (String, String, String, [(String, String, String)])) -> String in
        var raw = "\(parts.0) \(parts.1) \(parts.2)\r\n"
        for (name, value, end) in parts.3 { raw += "\(name): \(value)\(end)" }
        return raw + "\r\n"
    }

    /// What parsing and normalizing `raw` gives, as comparable text.
    static func outcome(_ chunks: [String]) -> String {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer()
        for chunk in chunks {
            buffer.writeString(chunk)
            do {
                switch try parser.next(&buffer) {
                case .head(let head):
                    let request = try RequestNormalizer().normalize(head)
                    return
                        "ok \(request.method) \(request.target) \(request.host ?? "-") \(request.headers.map { "\($0.name)=\($0.value)" })"
                case .needMoreData: continue
                case .body, .end: return "unexpected"
                }
            } catch {
                return "refused \(error.reason.rawValue)"
            }
        }
        return "incomplete"
    }

    @Test func parsingIsTheSameWholeOrByteByByteAndWhatIsSentUpstreamParsesBackTheSame() async {
        await propertyCheck(count: 4000, input: Self.headGenerator) { raw in
            let whole = Self.outcome([raw])
            let bytewise = Self.outcome(raw.unicodeScalars.map { String($0) })
            #expect(whole == bytewise, "\(raw.debugDescription)")
            guard whole.hasPrefix("ok") else { return }
            // The request the proxy sends upstream is itself unambiguous, and normalizing it
            // again changes nothing the upstream sees.
            guard let head = try? parseHead(raw), let request = try? RequestNormalizer().normalize(head) else { return }
            let upstream = request.upstreamHead(framing: .none, clientAddress: "127.0.0.1", preserveHost: true, upstreamHost: "o")
            var serialized = "\(upstream.method.rawValue) \(upstream.uri) HTTP/1.1\r\n"
            for (name, value) in upstream.headers { serialized += "\(name): \(value)\r\n" }
            serialized += "\r\n"
            guard let again = try? RequestNormalizer().normalize(parseHead(serialized)) else {
                Issue.record("the upstream request does not parse: \(serialized.debugDescription)")
                return
            }
            #expect(again.method == request.method)
            #expect(again.target == request.target)
            #expect(again.host == (request.host ?? "o"))  // an HTTP/1.0 request without Host gets the upstream's
            #expect(again.headers.map { "\($0.name)=\($0.value)" } == request.headers.map { "\($0.name)=\($0.value)" })
        }
    }

    // MARK: The key

    /// The parts of a request that enter the key (for the route below), normalized.
    struct Keyed: Hashable, Sendable {
        var method: String
        var host: String
        var path: String
        var parameters: [QueryParameter]
        var body: String
        var language: String?

        var normalized: [String] {
            // Sorted by name; a repeated name keeps the order of its values.
            let query = ["a", "b"].flatMap { name in parameters.filter { $0.name == name }.map { "\(name)=\($0.value)" } }
            return [method, host.lowercased(), path, query.joined(separator: "&"), body, language ?? "<none>"]
        }
    }

    struct QueryParameter: Hashable, Sendable {
        var name: String
        var value: String
    }

    /// How a request is written, beyond what it means: none of this may change the key.
    struct Unkeyed: Sendable {
        /// Which name's next parameter (or noise) is written next: different names interleave
        /// freely, a repeated name keeps its order.
        var picks: [Int]
        var order: [Int]
        var encodings: [Int]
        var noise: [String]
        var headerCase: Bool
    }

    static let policy = CachePolicy(routes: [
        try! Route(path: PathPattern("/r/*"), methods: ["GET", "POST"], query: .only(["a", "b"]), vary: ["accept-language"])
    ])

    static let keyedGenerator = zip(
        Gen.element(of: ["GET", "POST"]).map { $0! }, Gen.element(of: ["api", "API", "other"]).map { $0! },
        Gen.element(of: ["/r/1", "/r/2"]).map { $0! },
        zip(Gen.element(of: ["a", "b"]).map { $0! }, Gen.element(of: ["1", "2", " ", "é"]).map { $0! }).array(of: 0...3),
        zip(Gen.element(of: ["", "x", "y"]).map { $0! }, Gen.element(of: [nil, "en", "fr"] as [String?]).map { $0! })
    ).map { (parts: (String, String, String, [(String, String)], (String, String?))) -> Keyed in
        Keyed(
            method: parts.0, host: parts.1, path: parts.2, parameters: parts.3.map { QueryParameter(name: $0.0, value: $0.1) },
            body: parts.4.0, language: parts.4.1)
    }

    static let unkeyedGenerator = zip(
        Gen.int(in: 0...2).array(of: 12), Gen.int(in: 0...100).array(of: 3), Gen.int(in: 0...2).array(of: 6),
        Gen.element(of: ["utm=1", "utm=2", "c=9", "", "&"]).map { $0! }.array(of: 0...2), Gen.bool
    ).map { (parts: ([Int], [Int], [Int], [String], Bool)) -> Unkeyed in
        Unkeyed(picks: parts.0, order: parts.1, encodings: parts.2, noise: parts.3, headerCase: parts.4)
    }

    /// Writes `keyed` the way `unkeyed` says and computes its key through the proxy's parser,
    /// normalizer and policy.
    static func key(_ keyed: Keyed, _ unkeyed: Unkeyed) -> String? {
        func encode(_ text: String, _ style: Int) -> String {
            text.unicodeScalars.map { scalar -> String in
                if scalar == " " { return style == 0 ? "+" : "%20" }
                if scalar.value > 0x7F { return String(scalar) }  // percent-encoded by the proxy itself
                return style == 2 ? String(format: "%%%02X", scalar.value) : String(scalar)
            }.joined()
        }
        let written = keyed.parameters.enumerated().map { index, parameter in
            (
                parameter.name,
                encode(parameter.name, unkeyed.encodings[index % 6]) + "=" + encode(parameter.value, unkeyed.encodings[(index + 3) % 6])
            )
        }
        var queues = [written.filter { $0.0 == "a" }.map(\.1), written.filter { $0.0 == "b" }.map(\.1), unkeyed.noise]
        var pieces: [String] = []
        var pick = 0
        while queues.contains(where: { !$0.isEmpty }) {
            var queue = unkeyed.picks[pick % unkeyed.picks.count]
            pick += 1
            while queues[queue].isEmpty { queue = (queue + 1) % 3 }
            pieces.append(queues[queue].removeFirst())
        }
        let target = keyed.path + (pieces.isEmpty ? "" : "?" + pieces.joined(separator: "&"))
        var headers: [(String, String)] = [("User-Agent", "agent-\(unkeyed.order[2])")]
        if let language = keyed.language { headers.append((unkeyed.headerCase ? "accept-language" : "Accept-Language", language)) }
        if !keyed.body.isEmpty { headers.append(("Content-Length", "\(keyed.body.utf8.count)")) }
        guard let request = try? proxyRequest(keyed.method, target, headers: headers, host: keyed.host),
            case .lookup(let route, let method) = policy.decide(request)
        else { return nil }
        guard case .key(let key, _) = policy.key(for: request, route: route, lookupMethod: method, body: ByteBuffer(string: keyed.body))
        else {
            return nil
        }
        return key.digest
    }

    @Test func keysDifferExactlyWhenAKeyedPartDiffers() async {
        await propertyCheck(
            count: 3000, input: Self.keyedGenerator, Self.keyedGenerator, Self.unkeyedGenerator, Self.unkeyedGenerator
        ) { a, b, writeA, writeB in
            guard let keyA = Self.key(a, writeA), let keyB = Self.key(b, writeB) else {
                Issue.record("a generated request was not looked up: \(a) \(b)")
                return
            }
            #expect((keyA == keyB) == (a.normalized == b.normalized), "\(a.normalized) vs \(b.normalized)")
            // The same meaning written differently always shares the key.
            #expect(Self.key(a, writeB) == keyA, "\(a.normalized) written two ways")
        }
    }
}
