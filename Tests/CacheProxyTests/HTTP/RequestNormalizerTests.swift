import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

@Suite struct RequestNormalizerTests {
    private func reason(_ raw: String) -> String? {
        do {
            _ = try RequestNormalizer().normalize(parseHead(raw))
            return nil
        } catch {
            return error.reason.rawValue
        }
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", "missing-host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "duplicate-host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "duplicate-host"),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: \r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: t.example,evil.example\r\n\r\n", "bad-host"),
        ("GET / HTTP/1.1\r\nHost: a;b\r\n\r\n", "bad-host"),
        ("GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", "host-mismatch"),
        ("GET http://a@b/x HTTP/1.1\r\nHost: a@b\r\n\r\n", "bad-host"),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "fragment"),
        ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", "bad-target"),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "bad-target"),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", "connect"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", "upgrade"),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n", "upgrade"),
        ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\n", "expectation"),
    ])
    func refuses(raw: String, reason expected: String) {
        #expect(reason(raw) == expected)
    }

    @Test func acceptsWhatIsUnambiguous() throws {
        #expect(reason("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") == nil)
        #expect(reason("GET / HTTP/1.0\r\n\r\n") == nil)
        #expect(reason("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n") == nil)
        #expect(reason("GET / HTTP/1.1\r\nHost: EXAMPLE.com:80\r\n\r\n") == nil)
        // Upgrade without `Connection: upgrade` is not an upgrade; h2c is ignored.
        #expect(reason("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n") == nil)
        let h2c = try proxyRequest(
            "GET", "/",
            headers: [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")])
        #expect(h2c.headers.isEmpty)
    }

    @Test func absoluteFormBecomesOriginForm() throws {
        let request = try proxyRequest("GET", "http://API:80/x?y=1", host: "api:80")
        #expect(request.target == "/x?y=1")
        #expect(request.host == "api:80")
        #expect(try proxyRequest("GET", "https://api?q", host: "api").target == "/?q")
        let noHost = try proxyRequest("GET", "http://api/x", host: nil, version: "HTTP/1.0")
        #expect(noHost.host == "api")
    }

    @Test func disallowedTargetBytesArePercentEncoded() throws {
        #expect(try proxyRequest("GET", "/a?filter={x}|\\^`<>\"[]").target == "/a?filter=%7Bx%7D%7C%5C%5E%60%3C%3E%22%5B%5D")
        #expect(try proxyRequest("GET", "/caf\u{E9}").target == "/caf%C3%A9")
        #expect(try proxyRequest("GET", "/ok-._~!$&'()*+,;=:@/?%41").target == "/ok-._~!$&'()*+,;=:@/?%41")
    }

    @Test func connectionTokensNeverRemoveProtectedHeaders() throws {
        let normalizer = RequestNormalizer(protectedHeaders: ["accept-language"])
        let request = try proxyRequest(
            "GET", "/",
            headers: [
                ("Connection", "keep-alive, host, content-length, transfer-encoding, accept-language, authorization, cookie, x-drop"),
                ("Accept-Language", "fr"), ("Authorization", "Bearer a"), ("Cookie", "c=1"), ("X-Drop", "1"), ("X-Keep", "1"),
                ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Proxy-Authorization", "x"),
            ], normalizer: normalizer)
        #expect(request.headers["accept-language"] == ["fr"])
        #expect(request.headers["authorization"] == ["Bearer a"])
        #expect(request.headers["cookie"] == ["c=1"])
        #expect(request.headers["x-keep"] == ["1"])
        for gone in ["x-drop", "connection", "keep-alive", "te", "proxy-authorization", "host", "content-length"] {
            #expect(!request.headers.contains(name: gone), "\(gone) should be removed")
        }
        #expect(request.host == "api")
    }

    @Test func clientForwardingHeadersAreDropped() throws {
        let request = try proxyRequest(
            "GET", "/",
            headers: [
                ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Host", "evil"), ("X-Forwarded-Scheme", "http"), ("Forwarded", "for=1.2.3.4"),
                ("X-Forwarded-Proto", "https"),
            ])
        #expect(request.headers.isEmpty)
        let head = request.upstreamHead(framing: .none, clientAddress: "127.0.0.1", preserveHost: true, upstreamHost: "origin:7000")
        #expect(head.headers["x-forwarded-for"] == ["127.0.0.1"])
        #expect(head.headers["x-forwarded-host"] == ["api"])
        #expect(head.headers["x-forwarded-proto"] == ["http"])
        #expect(head.headers["forwarded"] == ["for=127.0.0.1;host=\"api\";proto=http"])
        #expect(head.headers["host"] == ["api"])
        let v6 = request.upstreamHead(framing: .length(3), clientAddress: "::1", preserveHost: false, upstreamHost: "origin:7000")
        #expect(v6.headers["forwarded"] == ["for=\"[::1]\";host=\"api\";proto=http"])
        #expect(v6.headers["host"] == ["origin:7000"])
        #expect(v6.headers["content-length"] == ["3"])
    }

    @Test func persistenceAndExpectations() throws {
        #expect(try proxyRequest("GET", "/").keepAlive)
        #expect(try !proxyRequest("GET", "/", headers: [("Connection", "close")]).keepAlive)
        #expect(try !proxyRequest("GET", "/", version: "HTTP/1.0").keepAlive)
        #expect(try proxyRequest("GET", "/", headers: [("Connection", "Keep-Alive")], version: "HTTP/1.0").keepAlive)
        let expecting = try proxyRequest("PUT", "/", headers: [("Expect", "100-Continue"), ("Content-Length", "1")])
        #expect(expecting.expectsContinue)
        #expect(!expecting.headers.contains(name: "expect"))
    }

    @Test func methodsRoundTripThroughNIO() throws {
        for method in ["GET", "M-SEARCH", "MSEARCH", "PURGE", "FOO", "get"] {
            let request = try proxyRequest(method, "/")
            #expect(request.httpMethod.rawValue == method)
        }
        #expect(try proxyRequest("HEAD", "/").httpMethod == .HEAD)
    }
}
