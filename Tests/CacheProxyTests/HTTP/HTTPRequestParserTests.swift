import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// What the parser produced, as text: `head M T V framing`, `body n`, `end`, or `error reason`.
private func parseAll(_ chunks: [String], limits: HTTPRequestParser.Limits = .init()) -> [String] {
    var parser = HTTPRequestParser(limits: limits)
    var buffer = ByteBuffer()
    var events: [String] = []
    var bodyBytes = 0
    func flushBody() {
        if bodyBytes > 0 { events.append("body \(bodyBytes)") }
        bodyBytes = 0
    }
    for chunk in chunks {
        buffer.writeString(chunk)
        loop: while true {
            do {
                switch try parser.next(&buffer) {
                case .head(let head):
                    events.append("head \(head.method) \(head.target) \(head.version) \(head.framing)")
                case .body(let body):
                    bodyBytes += body.readableBytes
                case .end:
                    flushBody()
                    events.append("end")
                case .needMoreData:
                    break loop
                }
            } catch {
                flushBody()
                events.append("error \(error.reason.rawValue)")
                return events
            }
        }
    }
    flushBody()
    return events
}

/// The same input fed whole and one byte at a time must give the same events.
private func parseBothWays(_ raw: String, limits: HTTPRequestParser.Limits = .init()) -> [String] {
    let whole = parseAll([raw], limits: limits)
    let bytewise = parseAll(raw.unicodeScalars.map { String($0) }, limits: limits)
    #expect(whole == bytewise, "fed whole: \(whole), byte by byte: \(bytewise)")
    return whole
}

@Suite struct HTTPRequestParserTests {
    @Test func simpleAndPipelinedRequests() {
        let raw =
            "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            + "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
            + "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n00A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "GET /d HTTP/1.0\r\n\r\n"
        #expect(
            parseBothWays(raw) == [
                "head GET /a?x=1 HTTP/1.1 none", "end",
                "head POST /b HTTP/1.1 length(5)", "body 5", "end",
                "head PUT /c HTTP/1.1 chunked", "body 13", "end",
                "head GET /d HTTP/1.0 none", "end",
            ])
    }

    @Test func methodsAndTargetsAreKeptByteForByte() throws {
        let head = try parseHead("M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(head.method == "M-SEARCH")
        #expect(HTTPMethod(rawValue: head.method).rawValue == "M-SEARCH")
        #expect(try parseHead("FOO_BAR /x{y} HTTP/1.1\r\nHost: h\r\n\r\n").target == "/x{y}")
        // UTF-8 bytes are kept one scalar per byte (é is C3 A9).
        #expect(try parseHead("GET /caf\u{E9} HTTP/1.1\r\nHost: h\r\n\r\n").target.unicodeScalars.suffix(2).map(\.value) == [0xC3, 0xA9])
    }

    @Test func leadingEmptyLinesAreIgnored() {
        #expect(parseBothWays("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") == ["head GET / HTTP/1.1 none", "end"])
    }

    @Test func headerValuesAreTrimmedAndKept() throws {
        let head = try parseHead("GET / HTTP/1.1\r\nHost:h\r\nX-A: \t spaced value \t\r\nX-Empty:\r\n\r\n")
        #expect(head.headers["x-a"] == ["spaced value"])
        #expect(head.headers["x-empty"] == [""])
        #expect(head.headers["host"] == ["h"])
    }

    @Test(arguments: [
        // Framing conflicts.
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "cl-and-te"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "cl-and-te"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "conflicting-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n", "conflicting-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", "bad-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "bad-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n", "bad-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", "bad-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", "bad-content-length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "transfer-encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer-encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", "transfer-encoding"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer-encoding"),
        // Chunks.
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", "bare-lf"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a\u{0}b\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n", "bad-header-name"),
        // Chunk extensions: exactly `;name[=token|"quoted"]` (ATS CVE-2026-24033, funky chunks).
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=\"val\r\nX\r\n0\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1; ext=v\r\nX\r\n0\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;=v\r\nX\r\n0\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=\r\nX\r\n0\r\n\r\n", "bad-chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a=b c\r\nX\r\n0\r\n\r\n", "bad-chunk"),
        // Header syntax.
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n continued\r\n\r\n", "obs-fold"),
        ("GET / HTTP/1.1\r\n\tX-A: 1\r\nHost: h\r\n\r\n", "obs-fold"),
        ("GET / HTTP/1.1\nHost: h\r\n\r\n", "bare-lf"),
        ("GET / HTTP/1.1\r\nHost: h\n\r\n", "bare-lf"),
        ("GET / HTTP/1.1\r\nHost: h\r\n\n", "bare-lf"),
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", "bare-cr"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{0}b\r\n\r\n", "bad-header-value"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{7F}b\r\n\r\n", "bad-header-value"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", "bad-header-name"),
        ("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", "bad-header-name"),
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", "bad-header-name"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n", "bad-header-name"),
        // Request line.
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "bad-request-line"),
        ("GET / http/1.1\r\nHost: h\r\n\r\n", "bad-request-line"),
        ("GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", "bad-request-line"),
        ("GET /\r\n\r\n", "bad-request-line"),
        ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", "bad-method"),
        ("GET /a\u{1}b HTTP/1.1\r\nHost: h\r\n\r\n", "bad-target"),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", "http-version"),
        ("GET / HTTP/1.2\r\nHost: h\r\n\r\n", "http-version"),
    ])
    func refusesAmbiguity(raw: String, reason: String) {
        #expect(parseBothWays(raw).last == "error \(reason)")
    }

    @Test func wellFormedChunkExtensionsAreAccepted() {
        #expect(
            parseBothWays(
                "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;a;b=c;d=\"q \\\" ;x\"\r\nX\r\n0;last\r\n\r\n") == [
                    "head POST / HTTP/1.1 chunked", "body 1", "end",
                ])
    }

    @Test func identicalContentLengthsAreOne() {
        #expect(
            parseBothWays("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc") == [
                "head POST / HTTP/1.1 length(3)", "body 3", "end",
            ])
    }

    @Test func limitsGiveTheRightStatus() {
        let limits = HTTPRequestParser.Limits(maxRequestLineBytes: 64, maxHeaderBytes: 128, maxHeaderCount: 3)
        // The request line is refused before its end arrives (no unbounded buffering).
        #expect(parseAll(["GET /" + String(repeating: "a", count: 100)], limits: limits).last == "error request-line-too-long")
        #expect(
            parseAll(["GET /" + String(repeating: "a", count: 70) + " HTTP/1.1\r\n"], limits: limits).last == "error request-line-too-long")
        #expect(parseAll(["GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200)], limits: limits).last == "error headers-too-large")
        #expect(parseAll(["GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"], limits: limits).last == "error too-many-headers")
        #expect(parseAll(["GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"], limits: limits) == ["head GET / HTTP/1.1 none", "end"])
        #expect(RequestRejection(.requestLineTooLong, "").status == .uriTooLong)
        #expect(RequestRejection(.headersTooLarge, "").status == .requestHeaderFieldsTooLarge)
        #expect(RequestRejection(.tooManyHeaders, "").status == .requestHeaderFieldsTooLarge)
    }

    @Test func afterAnErrorNothingMoreIsParsed() {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nX : y\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(throws: RequestRejection.self) { try parser.next(&buffer) }
        #expect(throws: RequestRejection.self) { try parser.next(&buffer) }
    }

    @Test func partialHeadIsReported() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HT")
        guard case .needMoreData = try parser.next(&buffer) else {
            Issue.record("expected needMoreData")
            return
        }
        #expect(parser.hasPartialHead(buffer))
        #expect(!parser.hasPartialHead(ByteBuffer()))
    }
}
