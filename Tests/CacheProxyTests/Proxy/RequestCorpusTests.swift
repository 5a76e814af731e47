import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

/// The raw-socket security corpus: request-smuggling, desync and cache-poisoning cases taken
/// from published advisories (Varnish VSV00007–18, Pingora 2025–26, nginx, Squid, ATS, HAProxy,
/// and the cache-poisoning research they cite), sent byte for byte to a real proxy in front of
/// a ``RecordingOrigin``.
///
/// Every case runs on its own stack (redis-server, origin, proxy) and checks both sides: what
/// the client got (status, `X-Cache`, `Cache-Status`, `Connection: close`, whether the socket was
/// closed, every response in order) and what the origin received (nothing at all, or exactly
/// the requests listed, with their method, target, body, framing and headers). On top of each
/// case's own checks, every step checks the universal oracles:
///
/// - no request for `/smuggled` ever reaches the origin, and no response for it reaches the client;
/// - every request the origin parses has one `Host`, at most one `Content-Length`, never both
///   `Content-Length` and `Transfer-Encoding`, no hop-by-hop header, no trailers, and the proxy's
///   own `X-Forwarded-*` / `Forwarded` values only;
/// - every step ends with the proxy closing the connection (a rejection, a request with
///   `Connection: close`, or a sentinel request carrying it), so every byte the proxy would ever
///   send is read.
///
/// After each case the same stack must still serve a normal GET (MISS, then HIT).
///
/// IDs are those of docs/security/advisories.md, with a letter per variant; classes with no advisory ID
/// (normalization, retries, errors, timeouts) use their own prefix.
@Suite(.serialized) struct RequestCorpusTests {
    @Test(arguments: Corpus.framing) func framing(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.chunked) func chunkedBodies(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.headerSyntax) func headerSyntax(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.requestLine) func requestLine(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.host) func hostAndAuthority(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.connection) func connectionHeader(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.upgrade) func upgradeAndConnect(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.expect) func expectContinue(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.pipelining) func pipeliningAndDraining(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.cachePoisoning) func cachePoisoning(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.cpdos) func cpdosAndLimits(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.timeouts) func timeouts(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.retries) func retries(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.errors) func errorAnswers(_ c: CorpusCase) async throws { try await c.run() }
    @Test(arguments: Corpus.normalization) func normalization(_ c: CorpusCase) async throws { try await c.run() }

    /// DO-04 / CPDoS (CCS 2019): a config that lists a never-stored status fails to load and
    /// names the key.
    @Test(arguments: [400, 413, 414, 431, 500, 502, 503, 504])
    func neverStoredStatusesAreRefusedByTheConfig(_ status: Int) {
        let base = """
            listen: 127.0.0.1:0
            upstream: http://127.0.0.1:1
            redis:
              url: redis://127.0.0.1:1/0

            """
        let inRoute = base + "routes:\n  - path: /x\n    statuses: [200, \(status)]\n"
        let inDefaults = base + "defaults:\n  statuses: [\(status)]\nroutes:\n  - path: /x\n"
        for (yaml, key) in [(inRoute, "routes[0].statuses[1]"), (inDefaults, "defaults.statuses[0]")] {
            do {
                _ = try ProxyConfiguration.parse(yaml: yaml, file: "corpus.yaml")
                Issue.record("a config listing status \(status) (\(key)) loaded")
            } catch {
                #expect(error.key == key)
                #expect(error.message.contains("\(status)"))
            }
        }
    }

    /// After the corpus: every refused request of the standard classes, back to back on ONE
    /// stack (with their checks), and the proxy still serves a normal GET: MISS, then HIT.
    @Test func proxyStillServesAfterTheWholeCorpus() async throws {
        let refusals = Corpus.allCases.filter { $0.stack == .standard }.flatMap { c in
            c.steps.enumerated().filter { $0.element.originUntouched }.map { ("\(c.id) step \($0.offset + 1)", $0.element) }
        }
        #expect(refusals.count > 100)
        try await withCorpusStack(.standard) { h, origin in
            for (label, step) in refusals {
                let problems = try await step.run(port: h.client.port, origin: origin, stack: .standard)
                if !problems.isEmpty { Issue.record("\(label), on the shared stack:\n\(problems.joined(separator: "\n"))") }
            }
            let first = try await h.client.get("/cached/after-corpus")
            #expect(first.status == .ok)
            #expect(first.xCache == "MISS")
            #expect(first.cacheStatus == Corpus.stored)
            let second = try await h.client.get("/cached/after-corpus")
            #expect(second.xCache == "HIT")
            #expect(second.body == first.body)
            #expect(origin.requests(path: "/cached/after-corpus").count == 1)
            #expect(origin.requests.allSatisfy { !$0.uri.contains("smuggled") })
        }
    }
}

// MARK: - The cases

enum Corpus {
    /// The smuggled request of the advisories (43 bytes): never parsed as a request, never
    /// reaching the origin as one, never answered.
    static let S = "GET /smuggled HTTP/1.1\r\nHost: t.example\r\n\r\n"
    /// S as one chunk, then the last chunk.
    static let chunkedS = "2b\r\n" + S + "\r\n0\r\n\r\n"

    static let stored = "cache-proxy; fwd=uri-miss; stored"
    static let hit = "cache-proxy; hit; ttl=*"
    static func notStored(_ reason: String) -> String { "cache-proxy; fwd=uri-miss; detail=\(reason)" }
    static func bypass(_ reason: String) -> String { "cache-proxy; fwd=bypass; detail=\(reason)" }

    /// The routes of every corpus stack. `/sentinel`, `/submit`, `/upload` and the rest are not
    /// cached (BYPASS no-route).
    static let routes = """
          - path: /cached
          - path: /cached/**
          - path: /page
          - path: /search
          - path: /vary/**
            vary: [Accept-Encoding]
          - path: /vary-star
          - path: /set-cookie
          - path: /status/*
            statuses: [200, 404]
          - path: /post-cached
            methods: [POST]
          - path: /both
            methods: [GET, POST]
          - path: /bad-framing
          - path: /hang
          - path: /auth
            vary: [Authorization]
        """

    static var allCases: [CorpusCase] {
        framing + chunked + headerSyntax + requestLine + host + connection + upgrade + expect + pipelining + cachePoisoning + cpdos
            + timeouts + retries + errors + normalization
    }

    // MARK: A. Framing: Content-Length / Transfer-Encoding

    static let framing: [CorpusCase] = [
        // RFC 9112 §6.1; nginx ≥1.21.1; Pingora issue #945; Varnish VSV00008 family. CL.TE.
        CorpusCase(
            "FR-01a", "CL.TE: Content-Length and Transfer-Encoding",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + S, 400,
                "cl-and-te")),
        // Same sources. TE.CL.
        CorpusCase(
            "FR-01b", "TE.CL: Transfer-Encoding then Content-Length",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunkedS, 400,
                "cl-and-te")),
        // Varnish VSV00015 / CVE-2025-30346 (400 sent, connection kept, body parsed as next request).
        CorpusCase(
            "FR-02", "two differing Content-Lengths",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 0\r\nContent-Length: 43\r\n\r\n" + S, 400,
                "conflicting-content-length")),
        // RFC 9110 §8.6 (identical values may be collapsed).
        CorpusCase(
            "FR-03a", "identical duplicate Content-Length headers are one",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("POST", "/submit", body: S, xCache: "BYPASS")],
                origin: [.req("POST", "/submit", body: S, framing: .length(43))])),
        // RFC 9110 §8.6.
        CorpusCase(
            "FR-03b", "identical list Content-Length: 43, 43 is one",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43, 43\r\n\r\n" + S,
                [.echo("POST", "/submit", body: S)], origin: [.req("POST", "/submit", body: S, framing: .length(43))])),
        // RFC 9110 §8.6; VSV00015.
        CorpusCase(
            "FR-03c", "unequal list Content-Length: 43, 0",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43, 0\r\n\r\n" + S, 400, "conflicting-content-length")),
        // HAProxy CVE-2023-40225 (empty CL forwarded).
        CorpusCase(
            "FR-04a", "empty Content-Length",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length:\r\n\r\n" + S, 400, "bad-content-length")),
        // HAProxy CVE-2023-40225 (empty CL not merged with a later one).
        CorpusCase(
            "FR-04b", "empty Content-Length then a real one",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: \r\nContent-Length: 43\r\n\r\n" + S, 400,
                "bad-content-length")),
        // ATS CVE-2021-32565; protocol-http1 CVE-2023-38697. Value variants below likewise.
        CorpusCase("FR-05a", "Content-Length: +43", .reject(cl("+43"), 400, "bad-content-length")),
        CorpusCase("FR-05b", "Content-Length: 0x2b", .reject(cl("0x2b"), 400, "bad-content-length")),
        CorpusCase("FR-05c", "Content-Length: -1", .reject(cl("-1"), 400, "bad-content-length")),
        CorpusCase("FR-05d", "Content-Length: 4 3", .reject(cl("4 3"), 400, "bad-content-length")),
        CorpusCase("FR-05e", "Content-Length: 43abc", .reject(cl("43abc"), 400, "bad-content-length")),
        CorpusCase("FR-05f", "Content-Length: 43.0", .reject(cl("43.0"), 400, "bad-content-length")),
        CorpusCase(
            "FR-05g", "Content-Length in fullwidth digits", .reject(cl("\u{ef}\u{bc}\u{94}\u{ef}\u{bc}\u{93}"), 400, "bad-content-length")),
        CorpusCase("FR-05h", "Content-Length: 5 5", .reject(cl("5 5"), 400, "bad-content-length")),
        // HAProxy CVE-2021-40346; nginx CVE-2013-2028 (size overflow class). 2^64+43 must not wrap to 43.
        CorpusCase("FR-06", "Content-Length 2^64+43 (overflow)", .reject(cl("18446744073709551659"), 400, "bad-content-length")),
        // Kettle, "HTTP/1.1 must die" (2025) 0.CL; RFC 9112 §5.2.
        CorpusCase(
            "FR-07", "Content-Length value folded onto the next line (0.CL)",
            .reject("GET /page HTTP/1.1\r\nHost: t.example\r\nContent-Length:\r\n 43\r\n\r\n" + S, 400, "obs-fold")),
        // Pingora CVE-2026-2835 / GHSA-hj7x-879w-vrp7; nginx ≥1.21.2.
        CorpusCase(
            "FR-08", "Transfer-Encoding in an HTTP/1.0 request",
            .reject(
                "POST /submit HTTP/1.0\r\nHost: t.example\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + S,
                400,
                "transfer-encoding")),
        // RFC 9112 §6.3 item 4; Pingora CVE-2026-2835.
        CorpusCase(
            "FR-09a", "Transfer-Encoding: chunked, identity with Content-Length",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 48\r\n\r\n0\r\n\r\n"
                    + S, 400, "cl-and-te")),
        // Same, without Content-Length.
        CorpusCase(
            "FR-09b", "Transfer-Encoding: chunked, identity",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked, identity\r\n\r\n" + chunkedS, 400,
                "transfer-encoding")),
        // Pingora CVE-2026-2835; akka-http CVE-2021-23339.
        CorpusCase(
            "FR-10a", "Transfer-Encoding lines chunked then identity",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunkedS,
                400, "transfer-encoding")),
        // Same, identity then chunked, with a Content-Length.
        CorpusCase(
            "FR-10b", "Transfer-Encoding lines identity then chunked, with Content-Length",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"
                    + "Content-Length: 4\r\n\r\n" + chunkedS, 400, "cl-and-te")),
        // RFC 9112 §7; curl PR #21966; bandit PR #631.
        CorpusCase(
            "FR-11a", "Transfer-Encoding: chunked, chunked",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" + chunkedS, 400,
                "transfer-encoding")),
        // Same, as two header lines.
        CorpusCase(
            "FR-11b", "two Transfer-Encoding: chunked lines",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedS,
                400, "transfer-encoding")),
        // RFC 9112 §6.1; Netty CVE-2019-20445; PortSwigger TE.TE obfuscation.
        CorpusCase(
            "FR-12a", "Transfer-Encoding: xchunked with Content-Length",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: xchunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + S, 400,
                "cl-and-te")),
        // Same, alone: never fall back to reading it as no body.
        CorpusCase(
            "FR-12b", "Transfer-Encoding: xchunked",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: xchunked\r\n\r\n" + chunkedS, 400, "transfer-encoding")),
        // Same (valid but unsupported coding).
        CorpusCase(
            "FR-12c", "Transfer-Encoding: gzip, chunked",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + chunkedS, 400,
                "transfer-encoding")),
        // RFC 9112 §6.1 (identity is no longer a transfer coding).
        CorpusCase(
            "FR-12d", "Transfer-Encoding: identity",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: identity\r\n\r\n" + S, 400, "transfer-encoding")),
        // tinyproxy issue #616 (CVE-2026-54387 bypass with `,chunked`).
        CorpusCase(
            "FR-13a", "Transfer-Encoding: ,chunked",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: ,chunked\r\n\r\n" + chunkedS, 400, "transfer-encoding")),
        // tinyproxy issue #616; TE names are case-insensitive: one chunked body of 43 bytes.
        CorpusCase(
            "FR-13b", "transfer-encoding: CHUNKED is chunked",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\ntransfer-encoding: CHUNKED\r\n\r\n" + chunkedS,
                [.echo("POST", "/submit", body: S)], origin: [.req("POST", "/submit", body: S, framing: .chunked)])),
        // tinyproxy issue #616, with CL: same as FR-01.
        CorpusCase(
            "FR-13c", "Transfer-Encoding: chunked , with Content-Length",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked ,\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + S, 400,
                "cl-and-te")),
        // Pingora CVE-2026-2835 (HTTP/1.0 bodies read until close). Without CL/TE the body is
        // empty; the next bytes are the next request (named /next, parsed by the proxy itself).
        CorpusCase(
            "FR-14", "HTTP/1.0 POST without length: empty body, next bytes are a request",
            .forward(
                "POST /submit HTTP/1.0\r\nHost: t.example\r\nConnection: keep-alive\r\n\r\nGET /next HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [.echo("POST", "/submit", body: "").with(header: ("connection", "keep-alive")), .echo("GET", "/next")],
                origin: [
                    .req("POST", "/submit", body: "", framing: .length(0)), .req("GET", "/next", body: "", framing: OriginFraming.none),
                ])),
        // ATS CVE-2026-111809 (HEAD with CL); TE.0. The body is framed by CL whatever the method.
        CorpusCase(
            "FR-15a", "HEAD on a cached route with a Content-Length body",
            .forward(
                "HEAD /cached HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\n\r\n" + S,
                [ResponseCheck(status: 200, xCache: "MISS", cacheStatus: notStored("head"), head: true)],
                origin: [.req("HEAD", "/cached", body: S, framing: .length(43))])),
        // ATS CVE-2026-111809; TE.0 (Bugcrowd 2024). OPTIONS with a chunked body.
        CorpusCase(
            "FR-15b", "OPTIONS on a cached route with a chunked body",
            .forward(
                "OPTIONS /cached HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedS,
                [.echo("OPTIONS", "/cached", body: S, xCache: "BYPASS")],
                origin: [.req("OPTIONS", "/cached", body: S, framing: .chunked)])),
    ]

    /// `POST /submit` with `Content-Length: value` and S after it.
    static func cl(_ value: String) -> String {
        "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: \(value)\r\n\r\n" + S
    }

    // MARK: B. Chunked-body syntax

    /// `POST /upload` with a chunked body (`body` is everything after the head).
    static func chunkedUpload(_ body: String) -> String {
        "POST /upload HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    }

    static let chunked: [CorpusCase] = [
        // Go CVE-2025-22871; nginx 1.29.4; ATS CVE-2024-53868 ("funky chunks").
        CorpusCase("CH-01a", "bare LF ends the chunk-size line", .reject(chunkedUpload("5\nhello\r\n0\r\n\r\n"), 400, "bare-lf")),
        // Same, on the last chunk, S behind it.
        CorpusCase("CH-01b", "bare LF ends the last-chunk line", .reject(chunkedUpload("0\n\r\n" + S), 400, "bare-lf")),
        // Kestrel CVE-2025-55315; aiohttp; Node CVE-2021-22960 (TERM.EXT).
        CorpusCase("CH-02a", "LF inside a chunk extension", .reject(chunkedUpload("3;x\nabc\r\n0\r\n\r\n"), 400, "bare-lf")),
        // Same class (EXT.TERM): bare CR in an extension.
        CorpusCase("CH-02b", "bare CR inside a chunk extension", .reject(chunkedUpload("3;x\ry\r\nabc\r\n0\r\n\r\n"), 400, "bare-cr")),
        // Apache CVE-2015-3183 (invalid chunk-ext characters).
        CorpusCase("CH-02c", "NUL in a chunk extension", .reject(chunkedUpload("3;a=b c\u{0}\r\nabc\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // ATS CVE-2026-24033; Jetty CVE-2026-2332; Netty CVE-2026-33870. (The proxy's documented
        // rules do not mention quoted strings; the advisory's safe behaviour is REJECT.)
        CorpusCase(
            "CH-03", "unterminated quoted-string in a chunk extension",
            .reject(chunkedUpload("1;ext=\"val\r\nX\r\n0\r\n\r\n" + S), 400, "bad-chunk")),
        // Varnish VSV00016 / CVE-2025-47905 (CRLF after chunk data skipped).
        CorpusCase("CH-04a", "CRLF after chunk data skipped", .reject(chunkedUpload("5\r\nhello0\r\n\r\n" + S), 400, "bad-chunk")),
        // h11 CVE-2025-43859 (any two bytes accepted).
        CorpusCase("CH-04b", "two junk bytes instead of CRLF", .reject(chunkedUpload("5\r\nhelloXY0\r\n\r\n"), 400, "bad-chunk")),
        // VSV00016: bare LF after chunk data.
        CorpusCase("CH-04c", "bare LF after chunk data", .reject(chunkedUpload("5\r\nhello\n0\r\n\r\n"), 400, "bad-chunk")),
        // "Funky chunks" (w4ke.info 2025); Squid parseChunkEnd.
        CorpusCase("CH-05", "more data than the chunk size (SPILL)", .reject(chunkedUpload("3\r\nabcdef\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Squid SQUID-2023:1 / CVE-2023-46846 (inferred); protocol-http1 CVE-2023-38697.
        CorpusCase("CH-06a", "chunk size 0x5", .reject(chunkedUpload("0x5\r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // http4s CVE-2026-69216.
        CorpusCase("CH-06b", "chunk size +5 and -0", .reject(chunkedUpload("+5\r\nhello\r\n-0\r\n\r\n"), 400, "bad-chunk")),
        // Squid SQUID-2023:1.
        CorpusCase("CH-06c", "chunk size 5g", .reject(chunkedUpload("5g\r\nhello\r\n\r\n\r\n"), 400, "bad-chunk")),
        // Squid SQUID-2023:1: empty chunk size.
        CorpusCase("CH-06d", "empty chunk size", .reject(chunkedUpload("\r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Varnish VSV00001; Apache CVE-2015-3183; nginx CVE-2013-2028: 2^64+5 must not wrap.
        CorpusCase("CH-07a", "chunk size 2^64+5", .reject(chunkedUpload("10000000000000005\r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Same: 16 hex digits.
        CorpusCase(
            "CH-07b", "chunk size ffffffffffffffff", .reject(chunkedUpload("ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Squid bug 4492; llhttp lenient_spaces_after_chunk_size.
        CorpusCase("CH-08a", "SP after the chunk size", .reject(chunkedUpload("5 \r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Same: SP before.
        CorpusCase("CH-08b", "SP before the chunk size", .reject(chunkedUpload(" 5\r\nhello\r\n0\r\n\r\n"), 400, "bad-chunk")),
        // Same: HTAB after the last-chunk size.
        CorpusCase("CH-08c", "HTAB after the last-chunk size", .reject(chunkedUpload("5\r\nhello\r\n0\t\r\n\r\n"), 400, "bad-chunk")),
        // actix-http CVE-2026-134342 (`0\r\n\n`).
        CorpusCase("CH-09", "last chunk followed by a bare LF", .reject(chunkedUpload("0\r\n\n" + S), 400, "bare-lf")),
        // Pingora issue #603; h2o PR #2097: the bytes after `0\r\n` are trailer lines.
        CorpusCase("CH-10", "last chunk without the final empty line", .reject(chunkedUpload("0\r\n" + S), 400, "bad-header-name")),
        // ATS CVE-2024-35161 (malformed trailers forwarded).
        CorpusCase(
            "CH-11", "malformed trailer line",
            .reject(chunkedUpload("5\r\nhello\r\n0\r\nX-T: a\r\nnot a field line\r\n\r\n"), 400, "bad-header-name")),
        // blaze-server GHSA-46q4-43ph-c6fr; RFC 9110 §6.5.1: trailers never merged or forwarded.
        CorpusCase(
            "CH-12", "trailers carrying framing, routing and trust fields are dropped",
            .forward(
                chunkedUpload(
                    "5\r\nhello\r\n0\r\nContent-Length: 0\r\nHost: evil.example\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n"),
                [.echo("POST", "/upload", body: "hello")],
                origin: [.req("POST", "/upload", body: "hello", framing: .chunked, has: [("host", "t.example")])]
            ).with(originRawLacks: ["evil.example", "6.6.6.6"])),
        // CH-02 safe clause: a valid extension is accepted, and re-chunked (never copied).
        CorpusCase(
            "CH-13", "valid chunk extensions are not forwarded",
            .forward(
                chunkedUpload("5;a=b\r\nhello\r\n6;c=\"d\"\r\n world\r\n0\r\n\r\n"), [.echo("POST", "/upload", body: "hello world")],
                origin: [.req("POST", "/upload", body: "hello world", framing: .chunked)]
            ).with(originRawLacks: ["a=b", "c=\"d\""])),
        // CH-07 note: leading zeros are grammatical; decoded as 5.
        CorpusCase(
            "CH-14", "chunk size with leading zeros",
            .forward(
                chunkedUpload("0005\r\nhello\r\n000\r\n\r\n"), [.echo("POST", "/upload", body: "hello")],
                origin: [.req("POST", "/upload", body: "hello", framing: .chunked)])),
    ]

    // MARK: C. Header-field syntax

    static let headerSyntax: [CorpusCase] = [
        // RFC 9112 §5.2 (obs-fold).
        CorpusCase("HS-01", "obs-fold", .reject("GET /page HTTP/1.1\r\nHost: t.example\r\nX-A: a\r\n b\r\n\r\n", 400, "obs-fold")),
        // RFC 9112 §5.2; TE.TE obfuscation; Akamai CVE-2025-32094.
        CorpusCase(
            "HS-02a", "obs-fold hiding Transfer-Encoding in X-A",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 48\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    + S,
                400, "obs-fold")),
        // Same: folded TE value.
        CorpusCase(
            "HS-02b", "Transfer-Encoding value folded",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 48\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + S,
                400,
                "obs-fold")),
        // ATS CVE-2021-37147; ktor GHSA-xrr9-rh8p-433v; Varnish CVE-2015-8852.
        CorpusCase("HS-03a", "bare LF line endings everywhere", .reject("GET /page HTTP/1.1\nHost: t.example\nX-A: 1\n\n", 400, "bare-lf")),
        // Same: request line only.
        CorpusCase("HS-03b", "bare LF after the request line", .reject("GET /page HTTP/1.1\nHost: t.example\r\n\r\n", 400, "bare-lf")),
        // Same: LF hiding TE.
        CorpusCase(
            "HS-03c", "bare LF hiding Transfer-Encoding",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nX-A: 1\nTransfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + S,
                400, "bare-lf")),
        // RFC 9112 §2.2; Varnish CVE-2015-8852 (single CR as separator).
        CorpusCase(
            "HS-04", "bare CR inside the header section",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nX-A: 1\rTransfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + S,
                400, "bare-cr")),
        // RFC 9110 §5.5.
        CorpusCase(
            "HS-05", "NUL in a field value",
            .reject("GET /page HTTP/1.1\r\nHost: t.example\r\nX-A: a\u{0}b\r\n\r\n", 400, "bad-header-value")),
        // RFC 9110 §5.5; CPDoS HMC; Akamai strict header parsing.
        CorpusCase(
            "HS-06", "BEL, VT, FF and DEL in a field value",
            .reject("GET /page HTTP/1.1\r\nHost: t.example\r\nX-A: a\u{07}\u{0b}\u{0c}\u{7f}b\r\n\r\n", 400, "bad-header-value")),
        // RFC 9112 §5.1; Node CVE-2021-22959; tiny-http.
        CorpusCase(
            "HS-07a", "SP between field name and colon",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 48\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + S, 400,
                "bad-header-name")),
        // Same: HTAB.
        CorpusCase(
            "HS-07b", "HTAB between field name and colon",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 48\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n" + S, 400,
                "bad-header-name")),
        // ATS CVE-2023-38522; nginx ≥1.21.1.
        CorpusCase(
            "HS-08a", "space inside a field name",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nTransfer Encoding: chunked\r\n\r\n0\r\n\r\n" + S, 400, "bad-header-name")),
        // ATS CVE-2023-38522; the other non-token bytes.
        CorpusCase("HS-08b", "control byte in a field name", .reject(hdr("X\u{01}Y: 1"), 400, "bad-header-name")),
        CorpusCase("HS-08c", "quote in a field name", .reject(hdr("X\"Y: 1"), 400, "bad-header-name")),
        CorpusCase("HS-08d", "parentheses in a field name", .reject(hdr("X(Y): 1"), 400, "bad-header-name")),
        CorpusCase("HS-08e", "UTF-8 field name", .reject(hdr("\u{c3}\u{a9}: 1"), 400, "bad-header-name")),
        CorpusCase("HS-08f", "slash in a field name", .reject(hdr("X/Y: 1"), 400, "bad-header-name")),
        // HAProxy CVE-2023-25725 (empty name truncated the header list); ATS CVE-2023-33934.
        CorpusCase(
            "HS-09a", "empty field name before Content-Length",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\n: x\r\nContent-Length: 43\r\n\r\n" + S, 400, "bad-header-name")),
        // Same: a bare colon.
        CorpusCase("HS-09b", "bare colon line", .reject(hdr(":"), 400, "bad-header-name")),
        // HAProxy CVE-2021-40346 (name length overflow): forwarded intact, framed by the real CL.
        CorpusCase(
            "HS-10", "270-byte header name next to Content-Length",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length0\(String(repeating: "a", count: 255)):\r\nContent-Length: 43\r\n\r\n"
                    + S, [.echo("POST", "/submit", body: S)],
                origin: [
                    .req(
                        "POST", "/submit", body: S, framing: .length(43),
                        has: [("Content-Length0\(String(repeating: "a", count: 255))", "")])
                ])),
        // RFC 9112 §2.2, §5.2; Kettle 2025 " Host" probe.
        CorpusCase(
            "HS-11a", "whitespace before the first header line",
            .reject("GET /page HTTP/1.1\r\n Host: evil.example\r\nHost: t.example\r\n\r\n", 400, "obs-fold")),
        // Same, after Host, hiding TE.
        CorpusCase(
            "HS-11b", "whitespace before a Transfer-Encoding line",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\n Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" + S, 400,
                "obs-fold")),
        // RFC 9112 §5; Akamai strict mode.
        CorpusCase("HS-12", "header line without a colon", .reject(hdr("foo"), 400, "bad-header-name")),
        // HS-06 safe clause: HTAB and obs-text in a value are forwarded unchanged.
        CorpusCase(
            "HS-13", "HTAB and UTF-8 in a field value are forwarded unchanged",
            .forward(
                hdr("X-A: a\tb caf\u{c3}\u{a9}"), [.echo("GET", "/page")],
                origin: [.req("GET", "/page", body: "", framing: OriginFraming.none, has: [("x-a", "a\tb café")])])),
    ]

    /// `GET /page` with one more header line.
    static func hdr(_ line: String) -> String { "GET /page HTTP/1.1\r\nHost: t.example\r\n\(line)\r\n\r\n" }

    // MARK: D. Request line

    static let requestLine: [CorpusCase] = [
        // Squid SQUID-2020:11 / CVE-2020-25097; nginx ≥1.21.1.
        CorpusCase("RL-01a", "space inside the target", .reject(line("GET /public /admin HTTP/1.1"), 400, "bad-request-line")),
        // Same: version repeated.
        CorpusCase("RL-01b", "version repeated", .reject(line("GET /admin HTTP/1.1 HTTP/1.1"), 400, "bad-request-line")),
        // RFC 9112 §3; Varnish VSV00011 (H1 analogue).
        CorpusCase("RL-02a", "two spaces after the method", .reject(line("GET  /page HTTP/1.1"), 400, "bad-request-line")),
        CorpusCase("RL-02b", "HTAB separators", .reject(line("GET\t/page\tHTTP/1.1"), 400, "bad-request-line")),
        CorpusCase("RL-02c", "trailing space after the version", .reject(line("GET /page HTTP/1.1 "), 400, "bad-request-line")),
        // nginx ≥1.21.1 (CTL in the request line); VSV00011 mitigation.
        CorpusCase("RL-03a", "NUL in the target", .reject(line("GET /pa\u{0}ge HTTP/1.1"), 400, "bad-target")),
        CorpusCase("RL-03b", "DEL in the target", .reject(line("GET /page\u{7f} HTTP/1.1"), 400, "bad-target")),
        CorpusCase("RL-03c", "method that is not a token", .reject(line("G@T /page HTTP/1.1"), 400, "bad-method")),
        CorpusCase("RL-03d", "NUL in the method", .reject(line("GET\u{0} /page HTTP/1.1"), 400, "bad-method")),
        // HAProxy CVE-2023-45539; ATS CVE-2021-27577.
        CorpusCase("RL-04a", "fragment in the target", .reject(line("GET /index.html#.png HTTP/1.1"), 400, "fragment")),
        CorpusCase("RL-04b", "fragment hiding dot-segments", .reject(line("GET /static/app.js#/../../admin HTTP/1.1"), 400, "fragment")),
        // RFC 9112 §2.3; llhttp lenient_version.
        CorpusCase("RL-05a", "lowercase http/1.1", .reject(line("GET /page http/1.1"), 400, "bad-request-line")),
        CorpusCase("RL-05b", "HTTP/1.10", .reject(line("GET /page HTTP/1.10"), 400, "bad-request-line")),
        CorpusCase("RL-05c", "HTTP/01.1", .reject(line("GET /page HTTP/01.1"), 400, "bad-request-line")),
        CorpusCase("RL-05d", "junk after the version", .reject(line("GET /page HTTP/1.1x"), 400, "bad-request-line")),
        CorpusCase("RL-05e", "HTTP/2.0", .reject(line("GET /page HTTP/2.0"), 505, "http-version")),
        CorpusCase("RL-05f", "HTTP/1.2", .reject(line("GET /page HTTP/1.2"), 505, "http-version")),
        // RFC 9112 §2.2/§2.3; nginx HTTP/0.9.
        CorpusCase("RL-06a", "no version (HTTP/0.9)", .reject("GET /page\r\n\r\n", 400, "bad-request-line")),
        // Same, positive: empty lines before the request line are ignored.
        CorpusCase(
            "RL-06b", "leading CRLF before the request line",
            .forward(
                "\r\nGET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/page", body: "", framing: OriginFraming.none)])),
        // Varnish VSV00018 mitigation; RFC 9112 §3.2.3–3.2.4.
        CorpusCase("RL-07a", "asterisk target on GET", .reject(line("GET * HTTP/1.1"), 400, "bad-target")),
        CorpusCase("RL-07b", "authority-form target on GET", .reject(line("GET t.example:80 HTTP/1.1"), 400, "bad-target")),
        CorpusCase("RL-07c", "query-only target", .reject(line("GET ?x=1 HTTP/1.1"), 400, "bad-target")),
        // Same, positive: OPTIONS *.
        CorpusCase(
            "RL-07d", "OPTIONS * is forwarded",
            .forward(
                "OPTIONS * HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("OPTIONS", "*", xCache: "BYPASS")],
                origin: [.req("OPTIONS", "*", body: "", framing: OriginFraming.none)])),
    ]

    /// `requestLine` with Host.
    static func line(_ requestLine: String) -> String { "\(requestLine)\r\nHost: t.example\r\n\r\n" }

    // MARK: E. Host and target authority

    static let host: [CorpusCase] = [
        // Varnish VSV00015 / CVE-2025-30346.
        CorpusCase(
            "HO-01a", "two differing Hosts with a body",
            .reject(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nHost: evil.example\r\nContent-Length: 43\r\n\r\n" + S, 400, "duplicate-host")),
        // Same: even equal.
        CorpusCase(
            "HO-01b", "two equal Hosts", .reject("GET /page HTTP/1.1\r\nHost: t.example\r\nHost: t.example\r\n\r\n", 400, "duplicate-host")),
        // RFC 9112 §3.2.
        CorpusCase("HO-02a", "HTTP/1.1 without Host", .reject("GET /page HTTP/1.1\r\n\r\n", 400, "missing-host")),
        // Same: an absolute-form target does not make up for it on HTTP/1.1.
        CorpusCase(
            "HO-02b", "HTTP/1.1 absolute-form without Host", .reject("GET http://t.example/page HTTP/1.1\r\n\r\n", 400, "missing-host")),
        // Same: HTTP/1.0 without Host goes to the upstream's name, consistently.
        CorpusCase(
            "HO-02c", "HTTP/1.0 without Host",
            .forward(
                "GET /page HTTP/1.0\r\n\r\n", [.echo("GET", "/page").with(header: ("connection", "close"))],
                origin: [
                    .req("GET", "/page", body: "", framing: OriginFraming.none, lacks: ["x-forwarded-host"]) { request in
                        request.headers.first(name: "host")?.hasPrefix("127.0.0.1:") == true ? nil : "Host is not the upstream's"
                    }
                ], sentinel: .none)),
        // nginx ≥1.21.1, 1.29.4 (RFC 3986 host validation).
        CorpusCase("HO-03a", "Host with a space", .reject(host("t.example evil"), 400, "bad-host")),
        CorpusCase("HO-03b", "Host with a path", .reject(host("t.example/../x"), 400, "bad-host")),
        CorpusCase("HO-03c", "Host with user info", .reject(host("evil@t.example"), 400, "bad-host")),
        CorpusCase("HO-03d", "Host with a non-numeric port", .reject(host("t.example:abc"), 400, "bad-host")),
        CorpusCase("HO-03e", "empty Host", .reject("GET /page HTTP/1.1\r\nHost: \r\n\r\n", 400, "bad-host")),
        // nginx 1.29.4 (RFC 3986 host/port validation): the advisory lists these two as REJECT
        // too, though `,` is a reg-name sub-delim and RFC 3986 puts no range on the port.
        CorpusCase("HO-03f", "Host port out of range (99999)", .reject(host("t.example:99999"), 400, "bad-host")),
        CorpusCase("HO-03g", "Host that is a list", .reject(host("t.example,evil.example"), 400, "bad-host")),
        CorpusCase("HO-03h", "Host with a backslash", .reject(host("t.example\\evil"), 400, "bad-host")),
        // RFC 9112 §3.2.2; Varnish VSV00018.
        CorpusCase(
            "HO-04", "absolute-form authority differs from Host",
            .reject("GET http://evil.example/page HTTP/1.1\r\nHost: t.example\r\n\r\n", 400, "host-mismatch")),
        // Varnish VSV00018 (root URLs).
        CorpusCase(
            "HO-05a", "absolute-form without a path, other host",
            .reject("GET http://evil.example HTTP/1.1\r\nHost: t.example\r\n\r\n", 400, "host-mismatch")),
        // Same: equal host, root path → origin-form `/`.
        CorpusCase(
            "HO-05b", "absolute-form root equal to Host is rewritten to /",
            .forward(
                "GET http://t.example/ HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/")],
                origin: [.req("GET", "/", body: "", framing: OriginFraming.none, has: [("host", "t.example")])])),
        // Same: no path at all, equal host (case-insensitive) → `/`.
        CorpusCase(
            "HO-05c", "absolute-form without a path, same host in capitals",
            .forward(
                "GET HTTP://T.EXAMPLE HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/")],
                origin: [.req("GET", "/", body: "", framing: OriginFraming.none, has: [("host", "t.example")])])),
        // Same: path and query kept, on a cached route (key and upstream from the same target).
        CorpusCase(
            "HO-05d", "absolute-form with path and query is rewritten to origin-form",
            .forward(
                "GET http://t.example/page?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page?x=1", cacheStatus: stored)],
                origin: [.req("GET", "/page?x=1", body: "", framing: OriginFraming.none)]),
            .forward("GET /page?x=1 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page?x=1", xCache: "HIT")], origin: [])),
        // ATS CVE-2021-37150 (scheme vs protocol): forwarded with the connection's real scheme.
        CorpusCase(
            "HO-06a", "https:// target on a cleartext listener",
            .forward(
                "GET https://t.example/account HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/account")],
                origin: [.req("GET", "/account", body: "", framing: OriginFraming.none, has: [("x-forwarded-proto", "http")])])),
        // Same: other schemes are not absolute-form HTTP targets.
        CorpusCase("HO-06b", "ftp:// target", .reject("GET ftp://t.example/ HTTP/1.1\r\nHost: t.example\r\n\r\n", 400, "bad-target")),
        // VSV00018: user info in the target's authority.
        CorpusCase(
            "HO-06c", "absolute-form with user info",
            .reject("GET http://evil@t.example/ HTTP/1.1\r\nHost: t.example\r\n\r\n", 400, "bad-target")),
        // Pingora CVE-2026-2836 / GHSA-f93w-pcj3-rggc: the key contains the Host (lower-cased).
        CorpusCase(
            "HO-07", "two Hosts never share an entry",
            .forward(
                "GET /cached HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
                [.echo("GET", "/cached", xCache: "MISS", cacheStatus: stored, count: 1)],
                origin: [.req("GET", "/cached", has: [("host", "a.example")])], sentinel: .none),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
                [.echo("GET", "/cached", xCache: "MISS", cacheStatus: stored, count: 2)],
                origin: [.req("GET", "/cached", has: [("host", "b.example")])], sentinel: .none),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: A.EXAMPLE\r\nConnection: close\r\n\r\n", [.echo("GET", "/cached", xCache: "HIT", count: 1)],
                origin: [], sentinel: .none),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n", [.echo("GET", "/cached", xCache: "HIT", count: 2)],
                origin: [], sentinel: .none),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: c.example:80\r\nConnection: close\r\n\r\n",
                [.echo("GET", "/cached", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/cached", has: [("host", "c.example:80"), ("x-forwarded-host", "c.example:80")])], sentinel: .none)),
    ]

    static func host(_ value: String) -> String { "GET /page HTTP/1.1\r\nHost: \(value)\r\n\r\n" }

    // MARK: F. Connection header vs hop-by-hop removal

    /// A 36-byte request, sent as the body of CN-01b.
    static let request36 = "GET /smuggled HTTP/1.1\r\nHost: ab\r\n\r\n"

    static let connection: [CorpusCase] = [
        // Varnish VSV00010 / CVE-2022-45059.
        CorpusCase(
            "CN-01a", "Connection: keep-alive, Content-Length",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nConnection: keep-alive, Content-Length\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("POST", "/submit", body: S)], origin: [.req("POST", "/submit", body: S, framing: .length(43))])),
        // VSV00010, the classic case: one DELETE with its 36-byte body (which is itself a request).
        CorpusCase(
            "CN-01b", "DELETE with Connection: content-length and a request as body",
            .forward(
                "DELETE /x HTTP/1.1\r\nHost: t.example\r\nContent-Length: 36\r\nConnection: content-length\r\n\r\n" + request36,
                [.echo("DELETE", "/x", body: request36)], origin: [.req("DELETE", "/x", body: request36, framing: .length(36))])),
        // VSV00010 class: Connection: Transfer-Encoding.
        CorpusCase(
            "CN-02", "Connection: Transfer-Encoding",
            .forward(
                "POST /submit HTTP/1.1\r\nHost: t.example\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + chunkedS,
                [.echo("POST", "/submit", body: S)], origin: [.req("POST", "/submit", body: S, framing: .chunked)])),
        // VSV00010 (Host strippable → routing bypass).
        CorpusCase(
            "CN-03", "Connection: close, Host",
            .forward(
                "GET /page HTTP/1.1\r\nHost: t.example\r\nConnection: close, Host\r\n\r\n",
                [.echo("GET", "/page").with(header: ("connection", "close"))],
                origin: [.req("GET", "/page", has: [("host", "t.example"), ("x-forwarded-host", "t.example")])], sentinel: .none)),
        // RFC 9110 §7.6.1; N. Davison 2019 (abusing hop-by-hop headers).
        CorpusCase(
            "CN-04", "Connection naming proxy-added headers, plus standard hop-by-hop headers",
            .forward(
                "GET /page HTTP/1.1\r\nHost: t.example\r\nConnection: X-Forwarded-For, X-Foo, keep-alive\r\nX-Foo: 1\r\n"
                    + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: foo\r\n\r\n",
                [.echo("GET", "/page", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/page", lacks: ["x-foo", "keep-alive", "proxy-connection", "te", "upgrade", "connection"])])),
        // RFC 9110 §7.6.1: a named end-to-end header is removed, others stay.
        CorpusCase(
            "CN-05", "Connection: x-foo removes X-Foo only",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nConnection: x-foo\r\nX-Foo: 1\r\nX-Bar: 2\r\n\r\n", [.echo("GET", "/api")],
                origin: [.req("GET", "/api", has: [("x-bar", "2")], lacks: ["x-foo"])])),
        // VSV00010 class: credentials cannot be made hop-by-hop.
        CorpusCase(
            "CN-06", "Connection: authorization, cookie keeps both",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nConnection: authorization, cookie\r\nAuthorization: Bearer t\r\nCookie: s=1\r\n\r\n",
                [.echo("GET", "/api")], origin: [.req("GET", "/api", has: [("authorization", "Bearer t"), ("cookie", "s=1")])])),
        // VSV00010 class: a header the route varies on cannot be made hop-by-hop.
        CorpusCase(
            "CN-07", "Connection: accept-encoding on a route varying on it",
            .forward(
                "GET /vary/Accept-Encoding HTTP/1.1\r\nHost: t.example\r\nConnection: accept-encoding\r\nAccept-Encoding: gzip\r\n\r\n",
                [.echo("GET", "/vary/Accept-Encoding", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/vary/Accept-Encoding", has: [("accept-encoding", "gzip")])]),
            .forward(
                "GET /vary/Accept-Encoding HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [.echo("GET", "/vary/Accept-Encoding", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/vary/Accept-Encoding", lacks: ["accept-encoding"])])),
        // VSV00010 class: a bypass header named in Connection still bypasses, and nothing is stored.
        CorpusCase(
            "CN-08", "Connection: x-original-url still bypasses the cache",
            .forward(
                "GET /page HTTP/1.1\r\nHost: t.example\r\nConnection: x-original-url\r\nX-Original-URL: /admin\r\n\r\n",
                [.echo("GET", "/page", xCache: "BYPASS", cacheStatus: bypass("unkeyed-header"))],
                origin: [.req("GET", "/page", has: [("x-original-url", "/admin")])]),
            .forward(
                "GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/page")])),
        // RFC 9110 §7.6.1: hop-by-hop headers are never forwarded, named or not.
        CorpusCase(
            "CN-09", "Keep-Alive, TE, Trailer, Upgrade, Proxy-Authorization never forwarded",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: foo\r\n"
                    + "Proxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
                [.echo("GET", "/api")],
                origin: [
                    .req(
                        "GET", "/api",
                        lacks: ["keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection", "http2-settings"])
                ])),
    ]

    // MARK: G. Upgrade / CONNECT

    static let websocket = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

    static let upgrade: [CorpusCase] = [
        // Pingora CVE-2026-2833 / GHSA-xq2h-p299-vjwv: no tunnel, trailing bytes never go upstream.
        CorpusCase(
            "UP-01", "WebSocket upgrade with a request behind it",
            .reject(
                "GET /chat HTTP/1.1\r\nHost: t.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\(websocket)\r\n"
                    + "GET /admin HTTP/1.1\r\nHost: t.example\r\n\r\n", 501, "upgrade")),
        // Bishop Fox h2c smuggling (2020); what `curl --http2` sends (it used to hang).
        CorpusCase(
            "UP-02", "h2c upgrade is ignored and the connection goes on",
            CorpusStep(
                send: latin1(
                    "GET / HTTP/1.1\r\nHost: t.example\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                        + "Connection: Upgrade, HTTP2-Settings\r\n\r\n"),
                then: latin1("GET /second HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"),
                responses: [.echo("GET", "/"), .echo("GET", "/second")],
                origin: [.req("GET", "/", lacks: ["upgrade", "http2-settings", "connection"]), .req("GET", "/second")],
                clientLacks: ["101 Switching"])),
        // RFC 9110 §15.2.2: WebSocket is not supported (no tunnel at all).
        CorpusCase(
            "UP-03", "WebSocket upgrade",
            .reject(
                "GET /chat HTTP/1.1\r\nHost: t.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\(websocket)\r\n", 501, "upgrade")),
        // nginx ≥1.21.1 (CONNECT always an error).
        CorpusCase(
            "UP-04a", "CONNECT aimed at Redis", .reject("CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: 127.0.0.1:6379\r\n\r\n", 501, "connect")),
        CorpusCase(
            "UP-04b", "CONNECT with a body behind it",
            .reject("CONNECT t.example:443 HTTP/1.1\r\nHost: t.example:443\r\n\r\n" + S, 501, "connect")),
        // Pingora CVE-2026-2833: a list naming h2c and another protocol.
        CorpusCase(
            "UP-05", "Upgrade: h2c, websocket",
            .reject("GET /chat HTTP/1.1\r\nHost: t.example\r\nConnection: upgrade\r\nUpgrade: h2c, websocket\r\n\r\n", 501, "upgrade")),
        // Same, other spellings.
        CorpusCase(
            "UP-06", "Connection: keep-alive, Upgrade with Upgrade: WebSocket",
            .reject(
                "GET /chat HTTP/1.1\r\nHost: t.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n", 501, "upgrade")),
        // Pingora CVE-2026-2833: Upgrade without the Connection token is a plain request; never tunnelled.
        CorpusCase(
            "UP-07", "Upgrade: websocket without Connection: upgrade",
            .forward(
                "GET /chat HTTP/1.1\r\nHost: t.example\r\nUpgrade: websocket\r\n\(websocket)\r\n", [.echo("GET", "/chat")],
                origin: [.req("GET", "/chat", lacks: ["upgrade"])])),
    ]

    // MARK: H. Expect: 100-continue

    static let expect: [CorpusCase] = [
        // ATS CVE-2025-55702, CVE-2025-31699: the origin answers before the body; the body the
        // client sends afterwards is drained (or the connection closed), never parsed.
        CorpusCase(
            "EX-01", "final response before the body, body sent afterwards",
            CorpusStep(
                send: latin1("POST /early/401 HTTP/1.1\r\nHost: t.example\r\nExpect: 100-continue\r\nContent-Length: 43\r\n\r\n"),
                then: latin1(S), sentinel: .drainOrClose, responses: [ResponseCheck(status: 401, echo: EchoCheck("POST", "/early/401"))],
                origin: [.req("POST", "/early/401")])),
        // Kettle, "HTTP/1.1 must die" (2025) obfuscated Expect.
        CorpusCase("EX-02a", "Expect: y 100-continue", .reject(expect("y 100-continue"), 417, "expectation")),
        CorpusCase("EX-02b", "Expect: 100-continuex", .reject(expect("100-continuex"), 417, "expectation")),
        CorpusCase("EX-02c", "Expect: 100-continue, foo", .reject(expect("100-continue, foo"), 417, "expectation")),
        CorpusCase("EX-02d", "Expect value folded", .reject(expect("\r\n 100-continue"), 400, "obs-fold")),
        // Pingora CVE-2025-4366 with Expect: the HIT is served, the body consumed.
        CorpusCase(
            "EX-03", "Expect and a body on a cached GET that hits",
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nExpect: 100-continue\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("GET", "/cached", body: S, xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/cached", body: S, framing: .length(43))]),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nExpect: 100-continue\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("GET", "/cached", body: S, xCache: "HIT", count: 1)], origin: [], sentinel: .drainOrClose)),
        // RFC 9110 §10.1.1, positive: 100 Continue from the proxy, then the body; Expect not forwarded.
        CorpusCase(
            "EX-04", "Expect: 100-continue answered by the proxy",
            CorpusStep(
                send: latin1("POST /submit HTTP/1.1\r\nHost: t.example\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
                then: latin1("hello"), trigger: .interim, sentinel: .required, responses: [.echo("POST", "/submit", body: "hello")],
                origin: [.req("POST", "/submit", body: "hello", framing: .length(5))], interim: 1)),
    ]

    static func expect(_ value: String) -> String {
        "POST /submit HTTP/1.1\r\nHost: t.example\r\nExpect: \(value)\r\nContent-Length: 43\r\n\r\n" + S
    }

    // MARK: I. Pipelining and body after the response

    static let pipelining: [CorpusCase] = [
        // Pingora CVE-2025-4366 / RUSTSEC-2025-0037: a Content-Length body on a HIT is consumed.
        CorpusCase(
            "PL-01", "Content-Length body on a cache HIT",
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("GET", "/cached", body: S, xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/cached", body: S, framing: .length(43))]),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\n\r\n" + S,
                [.echo("GET", "/cached", body: S, xCache: "HIT", count: 1)], origin: [])),
        // Pingora CVE-2025-4366 (chunked variant): forwarded with a Content-Length on a cached route.
        CorpusCase(
            "PL-02", "chunked body on a cache HIT",
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedS,
                [.echo("GET", "/cached", body: S, xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/cached", body: S, framing: .length(43))]),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedS,
                [.echo("GET", "/cached", body: S, xCache: "HIT", count: 1)], origin: [])),
        // Varnish VSV00008 / CVE-2022-23959; nginx CVE-2019-20372: the proxy's own answer (502,
        // upstream down) is followed by draining the body or closing.
        CorpusCase(
            "PL-03a", "body on a request the proxy answers itself (502)", stack: .deadUpstream,
            CorpusStep(
                send: latin1("DELETE /page HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\n\r\n" + S), sentinel: .drainOrClose,
                responses: [.gatewayError(502, route: nil)], origin: [])),
        // Same, the body sent only after the 502 arrived.
        CorpusCase(
            "PL-03b", "body sent after the proxy's own 502", stack: .deadUpstream,
            CorpusStep(
                send: latin1("POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 43\r\n\r\n"), then: latin1(S),
                sentinel: .drainOrClose, responses: [.gatewayError(502, route: nil)], origin: [])),
        // Varnish VSV00015 (keep-alive after a 400).
        CorpusCase(
            "PL-04", "parse error in the header section, body behind it",
            .reject("POST /submit HTTP/1.1\r\nHost: t.example\r\nX-Bad\u{01}: 1\r\nContent-Length: 43\r\n\r\n" + S, 400, "bad-header-name")),
        // RFC 9112 §9.3.2 (positive): HIT, MISS, HEAD HIT, HIT in order; the origin sees /miss only.
        CorpusCase(
            "PL-05", "pipelined HIT, MISS, HEAD and HIT",
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/cached", xCache: "MISS")],
                origin: [.req("GET", "/cached")]),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\n\r\nGET /miss HTTP/1.1\r\nHost: t.example\r\n\r\n"
                    + "HEAD /cached HTTP/1.1\r\nHost: t.example\r\n\r\nGET /cached HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [
                    .echo("GET", "/cached", xCache: "HIT", count: 1), .echo("GET", "/miss", xCache: "BYPASS"),
                    ResponseCheck(status: 200, xCache: "HIT", head: true), .echo("GET", "/cached", xCache: "HIT", count: 1),
                ], origin: [.req("GET", "/miss")], sentinel: .none)),
        // ATS CVE-2025-31699: the origin answers 413 while owed a body; that upstream connection
        // is not reused, and the client's remaining body is drained.
        CorpusCase(
            "PL-06", "origin answers 413 early while owed 99990 bytes",
            CorpusStep(
                send: latin1("POST /early/413 HTTP/1.1\r\nHost: t.example\r\nContent-Length: 100000\r\n\r\n0123456789"),
                then: Array(repeating: UInt8(ascii: "x"), count: 99_990), sentinel: .drainOrClose,
                responses: [ResponseCheck(status: 413, echo: EchoCheck("POST", "/early/413"))], origin: [.req("POST", "/early/413")],
                originCheck: { requests in
                    // The sentinel, if answered, came on another connection than the early answer.
                    requests.count < 2 || requests[1].connection != requests[0].connection ? nil : "the owed connection was reused"
                })),
        // ATS CVE-2026-111816; Varnish VSV00009: a response with CL and TE is a 502, never stored,
        // and the bytes behind it never reach the client.
        // (A GET whose pooled connection got a malformed answer may be re-sent once: 1 or 2 requests.)
        CorpusCase(
            "PL-07", "origin response with Content-Length and Transfer-Encoding",
            CorpusStep(
                send: latin1("GET /bad-framing HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"),
                responses: [.gatewayError(502, route: "/bad-framing").with(cacheStatus: notStored("upstream-failed"))],
                clientLacks: ["evil", "302 Found"], originCheck: badFramingReached),
            CorpusStep(
                send: latin1("GET /bad-framing HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"),
                responses: [.gatewayError(502, route: "/bad-framing").with(cacheStatus: notStored("upstream-failed"))],
                clientLacks: ["evil"], originCheck: badFramingReached)),
        // RFC 9112 §9.3.2: pipelined requests are answered in order, bodies and all.
        CorpusCase(
            "PL-08", "pipelined requests answered in order",
            .forward(
                "GET /p1 HTTP/1.1\r\nHost: t.example\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: t.example\r\nContent-Length: 3\r\n\r\ntwo"
                    + "GET /cached HTTP/1.1\r\nHost: t.example\r\n\r\nPUT /p4 HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "4\r\nfour\r\n0\r\n\r\nGET /cached HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [
                    .echo("GET", "/p1"), .echo("POST", "/p2", body: "two"), .echo("GET", "/cached", xCache: "MISS"),
                    .echo("PUT", "/p4", body: "four"), .echo("GET", "/cached", xCache: "HIT", count: 1),
                ],
                origin: [
                    .req("GET", "/p1"), .req("POST", "/p2", body: "two"), .req("GET", "/cached"),
                    .req("PUT", "/p4", body: "four", framing: .chunked),
                ])),
        // Varnish VSV00015: after a refused pipelined request nothing more is parsed.
        CorpusCase(
            "PL-09", "refused request behind a good one; the bytes after it are never parsed",
            CorpusStep(
                send: latin1(
                    "GET /p1 HTTP/1.1\r\nHost: t.example\r\n\r\nGET /p2 HTTP/1.1\r\nHost: t.example\r\nHost: evil.example\r\n"
                        + "Content-Length: 43\r\n\r\n" + S + "GET /sentinel HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"),
                responses: [.echo("GET", "/p1"), .rejected(400, "duplicate-host")], origin: [.req("GET", "/p1")])),
    ]

    /// PL-07: the origin got GET /bad-framing once, or twice (one retry), and nothing else.
    static let badFramingReached: @Sendable ([RecordingOrigin.Request]) -> String? = { requests in
        let ok = (1...2).contains(requests.count) && requests.allSatisfy { $0.method == "GET" && $0.uri == "/bad-framing" }
        return ok ? nil : "the origin got \(requests.count) requests, expected GET /bad-framing once or twice (not stored)"
    }

    // MARK: J. Cache poisoning: unkeyed input, keys, variants

    static let bypassHeaders = [
        "X-Original-URL: /admin", "X-Rewrite-URL: /admin", "X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE",
        "X-Method-Override: DELETE", "X-Host: evil.example", "X-HTTP-Host-Override: evil.example", "X-Original-Host: evil.example",
    ]

    static let cachePoisoning: [CorpusCase] =
        [
            // Kettle, "Practical Web Cache Poisoning" (2018): X-Forwarded-Host is replaced.
            CorpusCase(
                "CP-01", "client X-Forwarded-Host is replaced",
                .forward(
                    "GET /page?cb=1 HTTP/1.1\r\nHost: t.example\r\nX-Forwarded-Host: evil.example\r\n\r\n",
                    [.echo("GET", "/page?cb=1", xCache: "MISS", cacheStatus: stored)],
                    origin: [.req("GET", "/page?cb=1", has: [("x-forwarded-host", "t.example")])]
                ).with(originRawLacks: ["evil.example"]),
                .forward("GET /page?cb=1 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page?cb=1", xCache: "HIT")], origin: [])),
            // Kettle 2018 (X-Forwarded-Scheme redirect loops).
            CorpusCase(
                "CP-02", "client X-Forwarded-Scheme/-Proto/-Port/-SSL are not passed",
                .forward(
                    "GET /page?cb=2 HTTP/1.1\r\nHost: t.example\r\nX-Forwarded-Scheme: https\r\nX-Forwarded-Proto: https\r\n"
                        + "X-Forwarded-Port: 1337\r\nX-Forwarded-SSL: on\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
                    [.echo("GET", "/page?cb=2", cacheStatus: stored)],
                    origin: [
                        .req(
                            "GET", "/page?cb=2", has: [("x-forwarded-proto", "http"), ("x-forwarded-for", "127.0.0.1")],
                            lacks: ["x-forwarded-scheme", "x-forwarded-port", "x-forwarded-ssl"])
                    ]
                ).with(originRawLacks: ["6.6.6.6", "1337", "https"])),
            // Kettle 2018; Param Miner: Forwarded is rebuilt by the proxy, X-Forwarded-Server dropped.
            CorpusCase(
                "CP-04", "client Forwarded and X-Forwarded-Server are replaced",
                .forward(
                    "GET /page?cb=4 HTTP/1.1\r\nHost: t.example\r\nX-Forwarded-Server: evil.example\r\n"
                        + "Forwarded: for=6.6.6.6;host=evil.example;proto=https\r\n\r\n",
                    [.echo("GET", "/page?cb=4", cacheStatus: stored)],
                    origin: [
                        .req(
                            "GET", "/page?cb=4", has: [("forwarded", "for=127.0.0.1;host=\"t.example\";proto=http")],
                            lacks: ["x-forwarded-server"])
                    ]
                ).with(originRawLacks: ["evil.example", "6.6.6.6"]),
                .forward("GET /page?cb=4 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page?cb=4", xCache: "HIT")], origin: [])),
            // Kettle, "Web Cache Entanglement" (2020): a fat GET is keyed on its body.
            CorpusCase(
                "CP-05", "fat GET never stored under the body-less key",
                .forward(
                    "GET /search?q=safe HTTP/1.1\r\nHost: t.example\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        + "Content-Length: 8\r\n\r\nq=poison",
                    [.echo("GET", "/search?q=safe", body: "q=poison", xCache: "MISS", cacheStatus: stored)],
                    origin: [.req("GET", "/search?q=safe", body: "q=poison", framing: .length(8))]),
                .forward(
                    "GET /search?q=safe HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/search?q=safe", body: "", xCache: "MISS")],
                    origin: [.req("GET", "/search?q=safe", body: "", framing: OriginFraming.none)]),
                .forward(
                    "GET /search?q=safe HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/search?q=safe", body: "", xCache: "HIT")],
                    origin: [])),
            // Kettle 2020 (`;` parameter cloaking).
            CorpusCase(
                "CP-06a", "parameter cloaking with ;",
                .forward(
                    "GET /search?q=safe;q=poison HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/search?q=safe;q=poison", cacheStatus: stored)],
                    origin: [.req("GET", "/search?q=safe;q=poison")]),
                .forward(
                    "GET /search?q=safe HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/search?q=safe", xCache: "MISS")],
                    origin: [.req("GET", "/search?q=safe")])),
            // Kettle 2020: parameter names are case-sensitive in the key.
            CorpusCase(
                "CP-06b", "?Q=1 and ?q=1 are different entries",
                .forward(
                    "GET /search?Q=1 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/search?Q=1", cacheStatus: stored)],
                    origin: [.req("GET", "/search?Q=1")]),
                .forward(
                    "GET /search?q=1 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/search?q=1", xCache: "MISS")],
                    origin: [.req("GET", "/search?q=1")])),
            // RFC 9111 §4.1: with `vary: [Accept-Encoding]`, `Vary: Accept-Encoding` is stored per value.
            CorpusCase(
                "CP-07", "Vary: Accept-Encoding stored per Accept-Encoding",
                .forward(
                    ae("gzip"), [.echo("GET", "/vary/Accept-Encoding", xCache: "MISS", cacheStatus: stored, count: 1)],
                    origin: [.req("GET", "/vary/Accept-Encoding", has: [("accept-encoding", "gzip")])]),
                .forward(
                    ae(nil), [.echo("GET", "/vary/Accept-Encoding", xCache: "MISS", cacheStatus: stored, count: 2)],
                    origin: [.req("GET", "/vary/Accept-Encoding", lacks: ["accept-encoding"])]),
                .forward(ae("gzip"), [.echo("GET", "/vary/Accept-Encoding", xCache: "HIT", count: 1)], origin: []),
                .forward(ae(nil), [.echo("GET", "/vary/Accept-Encoding", xCache: "HIT", count: 2)], origin: []),
                .forward(
                    ae("br"), [.echo("GET", "/vary/Accept-Encoding", xCache: "MISS", count: 3)],
                    origin: [.req("GET", "/vary/Accept-Encoding")])),
            // RFC 9111 §4.1: Vary on a header not in the route's key is never stored.
            CorpusCase(
                "CP-08a", "Vary: X-Forwarded-Host is not stored",
                .forward(
                    "GET /vary/X-Forwarded-Host HTTP/1.1\r\nHost: t.example\r\nX-Forwarded-Host: evil.example\r\n\r\n",
                    [.echo("GET", "/vary/X-Forwarded-Host", xCache: "MISS", cacheStatus: notStored("vary"))],
                    origin: [.req("GET", "/vary/X-Forwarded-Host", has: [("x-forwarded-host", "t.example")])]),
                .forward(
                    "GET /vary/X-Forwarded-Host HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/vary/X-Forwarded-Host", xCache: "MISS", cacheStatus: notStored("vary"))],
                    origin: [.req("GET", "/vary/X-Forwarded-Host")])),
            // RFC 9111 §4.1: Vary: * is never stored.
            CorpusCase(
                "CP-08b", "Vary: * is not stored",
                .forward(
                    "GET /vary-star HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/vary-star", xCache: "MISS", cacheStatus: notStored("vary"))], origin: [.req("GET", "/vary-star")]),
                .forward(
                    "GET /vary-star HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/vary-star", xCache: "MISS", cacheStatus: notStored("vary"))], origin: [.req("GET", "/vary-star")])),
            // RFC 9111 §4.1: Vary on a request header the route does not list.
            CorpusCase(
                "CP-08c", "Vary: Accept-Language on a route varying on Accept-Encoding",
                .forward(
                    "GET /vary/Accept-Language HTTP/1.1\r\nHost: t.example\r\nAccept-Language: fr\r\n\r\n",
                    [.echo("GET", "/vary/Accept-Language", cacheStatus: notStored("vary"))], origin: [.req("GET", "/vary/Accept-Language")]),
                .forward(
                    "GET /vary/Accept-Language HTTP/1.1\r\nHost: t.example\r\nAccept-Language: en\r\n\r\n",
                    [.echo("GET", "/vary/Accept-Language", xCache: "MISS", count: 2)], origin: [.req("GET", "/vary/Accept-Language")])),
            // RFC 9111 §3, §3.5: Authorization bypasses, nothing stored.
            CorpusCase(
                "CP-09a", "Authorization bypasses the cache",
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\nAuthorization: Bearer x\r\n\r\n",
                    [.echo("GET", "/page", xCache: "BYPASS", cacheStatus: bypass("authorization"))],
                    origin: [.req("GET", "/page", has: [("authorization", "Bearer x")])]),
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", xCache: "MISS", cacheStatus: stored)],
                    origin: [.req("GET", "/page")])),
            // Same: Cookie.
            CorpusCase(
                "CP-09b", "Cookie bypasses the cache",
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\nCookie: s=1\r\n\r\n",
                    [.echo("GET", "/page", xCache: "BYPASS", cacheStatus: bypass("cookie"))],
                    origin: [.req("GET", "/page", has: [("cookie", "s=1")])]),
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", xCache: "MISS", cacheStatus: stored)],
                    origin: [.req("GET", "/page")])),
            // Same: a route that varies on Authorization caches per credential, never across them.
            CorpusCase(
                "CP-09d", "Authorization on a route varying on it is cached per user",
                .forward(
                    "GET /auth HTTP/1.1\r\nHost: t.example\r\nAuthorization: Bearer alice\r\n\r\n",
                    [.echo("GET", "/auth", xCache: "MISS", cacheStatus: stored, count: 1)],
                    origin: [.req("GET", "/auth", has: [("authorization", "Bearer alice")])]),
                .forward(
                    "GET /auth HTTP/1.1\r\nHost: t.example\r\nAuthorization: Bearer bob\r\n\r\n",
                    [.echo("GET", "/auth", xCache: "MISS", cacheStatus: stored, count: 2)],
                    origin: [.req("GET", "/auth", has: [("authorization", "Bearer bob")])]),
                .forward(
                    "GET /auth HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/auth", xCache: "MISS", count: 3)],
                    origin: [.req("GET", "/auth", lacks: ["authorization"])]),
                .forward(
                    "GET /auth HTTP/1.1\r\nHost: t.example\r\nAuthorization: Bearer alice\r\n\r\n",
                    [.echo("GET", "/auth", xCache: "HIT", count: 1)],
                    origin: [])),
            // Same: Set-Cookie responses are not stored.
            CorpusCase(
                "CP-09c", "Set-Cookie responses are not stored",
                .forward(
                    "GET /set-cookie HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/set-cookie", xCache: "MISS", cacheStatus: notStored("set-cookie"))],
                    origin: [.req("GET", "/set-cookie")]),
                .forward(
                    "GET /set-cookie HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/set-cookie", xCache: "MISS", cacheStatus: notStored("set-cookie"))],
                    origin: [.req("GET", "/set-cookie")])),
            // RFC 9111 §3.3–§4: a HEAD miss stores nothing; the GET entry answers a later HEAD.
            CorpusCase(
                "CP-10a", "a HEAD miss stores nothing",
                .forward(
                    "HEAD /cached HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [ResponseCheck(status: 200, xCache: "MISS", cacheStatus: notStored("head"), head: true)],
                    origin: [.req("HEAD", "/cached")]),
                .forward(
                    "GET /cached HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/cached", xCache: "MISS", cacheStatus: stored, count: 2)], origin: [.req("GET", "/cached")]),
                .forward(
                    "HEAD /cached HTTP/1.1\r\nHost: t.example\r\n\r\n", [ResponseCheck(status: 200, xCache: "HIT", head: true)], origin: [])
            ),
            // RFC 9111 §4: a POST response is never served to a GET.
            CorpusCase(
                "CP-10b", "POST and GET never share an entry",
                .forward(
                    "POST /both HTTP/1.1\r\nHost: t.example\r\nContent-Length: 2\r\n\r\n{}",
                    [.echo("POST", "/both", body: "{}", cacheStatus: stored)], origin: [.req("POST", "/both", body: "{}")]),
                .forward(
                    "GET /both HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/both", xCache: "MISS", cacheStatus: stored)],
                    origin: [.req("GET", "/both")]),
                .forward(
                    "POST /both HTTP/1.1\r\nHost: t.example\r\nContent-Length: 2\r\n\r\n{}",
                    [.echo("POST", "/both", body: "{}", xCache: "HIT", count: 1)], origin: [])),
            // ATS CVE-2024-35296: garbage Accept-Encoding breaks nothing.
            CorpusCase(
                "CP-11", "garbage Accept-Encoding still caches",
                .forward(
                    ae("gzip;q=abc, ,br;q=2,,identity;q=-1"), [.echo("GET", "/vary/Accept-Encoding", cacheStatus: stored)],
                    origin: [.req("GET", "/vary/Accept-Encoding", has: [("accept-encoding", "gzip;q=abc, ,br;q=2,,identity;q=-1")])]),
                .forward(ae("gzip;q=abc, ,br;q=2,,identity;q=-1"), [.echo("GET", "/vary/Accept-Encoding", xCache: "HIT")], origin: [])),
            // RFC 9111 §5.2.1: client Cache-Control/Pragma never replace or delete the entry.
            CorpusCase(
                "CP-12", "client Cache-Control: no-store and Pragma do not poison the entry",
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", cacheStatus: stored, count: 1)],
                    origin: [.req("GET", "/page")]),
                .forward(
                    "GET /page HTTP/1.1\r\nHost: t.example\r\nCache-Control: max-age=0, no-store\r\nPragma: no-cache\r\n\r\n",
                    [ResponseCheck(status: 200)], origin: nil),
                .forward("GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page", xCache: "HIT", count: 1)], origin: [])),
        ]
        // Kettle 2018 (Symfony CVE-2018-14773) and CPDoS HMO (CCS 2019): each URL-, method- and
        // host-override header bypasses the cache, and nothing is stored from it.
        + bypassHeaders.enumerated().map { index, header in
            let name = String(header.prefix(while: { $0 != ":" }))
            let value = String(header.dropFirst(name.count + 2))
            let id = "CP-03" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
            return CorpusCase(
                id, "\(name) bypasses the cache",
                .forward(
                    "GET /page?cb=3 HTTP/1.1\r\nHost: t.example\r\n\(header)\r\n\r\n",
                    [.echo("GET", "/page?cb=3", xCache: "BYPASS", cacheStatus: bypass("unkeyed-header"))],
                    origin: [.req("GET", "/page?cb=3", has: [(name.lowercased(), value)])]),
                .forward(
                    "GET /page?cb=3 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                    [.echo("GET", "/page?cb=3", xCache: "MISS", cacheStatus: stored, count: 2)],
                    origin: [.req("GET", "/page?cb=3")]))
        }

    /// `GET /vary/Accept-Encoding` with that Accept-Encoding (none when nil).
    static func ae(_ value: String?) -> String {
        "GET /vary/Accept-Encoding HTTP/1.1\r\nHost: t.example\r\n" + (value.map { "Accept-Encoding: \($0)\r\n" } ?? "") + "\r\n"
    }

    // MARK: K. CPDoS (errors stored in the cache) and size limits

    static let cleanPage10 = CorpusStep.forward(
        "GET /page?cb=10 HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("GET", "/page?cb=10", xCache: "MISS", cacheStatus: stored)],
        origin: [.req("GET", "/page?cb=10")])

    static let cpdos: [CorpusCase] = [
        // CPDoS HHO (CCS 2019): past the proxy's limit, 431 and nothing stored.
        CorpusCase(
            "DO-01a", "header section of 40000 bytes",
            .reject(hdrPage10("X-Oversize: " + String(repeating: "A", count: 40_000)), 431, "headers-too-large"), cleanPage10),
        // Same, boundary: field lines (with their CRLFs) of exactly 32768 bytes pass.
        CorpusCase(
            "DO-01b", "header section of exactly 32768 bytes",
            .forward(
                hdrPage10("X-Pad: " + String(repeating: "a", count: 32_768 - 17 - 9)), [.echo("GET", "/page?cb=10")],
                origin: [.req("GET", "/page?cb=10")])),
        CorpusCase(
            "DO-01c", "header section of 32769 bytes",
            .reject(hdrPage10("X-Pad: " + String(repeating: "a", count: 32_769 - 17 - 9)), 431, "headers-too-large"), cleanPage10),
        // CPDoS HMC (CCS 2019).
        CorpusCase(
            "DO-02", "meta character (VT) in a header", .reject(hdrPage10("X-Metachar: \u{0b}"), 400, "bad-header-value"), cleanPage10),
        // CPDoS HMO (CCS 2019): all three method-override headers at once.
        CorpusCase(
            "DO-03", "method-override headers bypass the cache",
            .forward(
                hdrPage10("X-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\nX-Method-Override: DELETE"),
                [.echo("GET", "/page?cb=10", xCache: "BYPASS", cacheStatus: bypass("unkeyed-header"))], origin: [.req("GET", "/page?cb=10")]
            ),
            .forward(
                "GET /page?cb=10 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [.echo("GET", "/page?cb=10", xCache: "MISS", cacheStatus: stored, count: 2)], origin: [.req("GET", "/page?cb=10")])),
        // CPDoS (CCS 2019) recommendation: an origin 400 with explicit freshness is not stored.
        CorpusCase(
            "DO-04a", "origin 400 with Cache-Control: max-age=600 is not stored",
            .forward(
                "GET /status/400 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [ResponseCheck(status: 400, xCache: "MISS", cacheStatus: notStored("status"))], origin: [.req("GET", "/status/400")]),
            .forward(
                "GET /status/400 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [ResponseCheck(status: 400, xCache: "MISS", cacheStatus: notStored("status"))], origin: [.req("GET", "/status/400")])),
        // Same, positive control: a listed status (404) is stored.
        CorpusCase(
            "DO-04b", "origin 404 listed in statuses is stored",
            .forward(
                "GET /status/404 HTTP/1.1\r\nHost: t.example\r\n\r\n", [ResponseCheck(status: 404, xCache: "MISS", cacheStatus: stored)],
                origin: [.req("GET", "/status/404")]),
            .forward("GET /status/404 HTTP/1.1\r\nHost: t.example\r\n\r\n", [ResponseCheck(status: 404, xCache: "HIT")], origin: [])),
        // CPDoS; RFC 9110 §15.5: 431 for too many fields; 100 pass, 101 do not.
        CorpusCase(
            "DO-05a", "100 header fields pass",
            .forward(
                hdrPage10((1...99).map { "X-\($0): a" }.joined(separator: "\r\n")), [.echo("GET", "/page?cb=10")],
                origin: [.req("GET", "/page?cb=10")])),
        CorpusCase(
            "DO-05b", "101 header fields",
            .reject(hdrPage10((1...100).map { "X-\($0): a" }.joined(separator: "\r\n")), 431, "too-many-headers"), cleanPage10),
        CorpusCase(
            "DO-05c", "500 header fields",
            .reject(hdrPage10((1...500).map { "X-\($0): a" }.joined(separator: "\r\n")), 431, "too-many-headers"), cleanPage10),
        // CPDoS; RFC 9111 §4.2.2: an origin 503 is not stored.
        CorpusCase(
            "DO-06a", "origin 503 is not stored",
            .forward(
                "GET /status/503 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [ResponseCheck(status: 503, xCache: "MISS", cacheStatus: notStored("status"))], origin: [.req("GET", "/status/503")]),
            .forward(
                "GET /status/503 HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [ResponseCheck(status: 503, xCache: "MISS", cacheStatus: notStored("status"))], origin: [.req("GET", "/status/503")])),
        // RFC 9112 §3 (414); CPDoS class.
        CorpusCase(
            "RL-08a", "request target of 16384 bytes",
            .reject(
                "GET /page?cb=10&x=" + String(repeating: "a", count: 16_384) + " HTTP/1.1\r\nHost: t.example\r\n\r\n", 414,
                "request-line-too-long"),
            cleanPage10),
        // Same, boundary: a request line of exactly 8192 bytes passes, 8193 does not.
        CorpusCase(
            "RL-08b", "request line of exactly 8192 bytes",
            .forward(
                "GET /" + String(repeating: "a", count: 8192 - 14) + " HTTP/1.1\r\nHost: t.example\r\n\r\n",
                [.echo("GET", "/" + String(repeating: "a", count: 8192 - 14))],
                origin: [.req("GET", "/" + String(repeating: "a", count: 8192 - 14))])),
        CorpusCase(
            "RL-08c", "request line of 8193 bytes",
            .reject(
                "GET /" + String(repeating: "a", count: 8193 - 14) + " HTTP/1.1\r\nHost: t.example\r\n\r\n", 414, "request-line-too-long")),
    ]

    /// `GET /page?cb=10` with more header lines (`Host: t.example` is 17 bytes with its CRLF).
    static func hdrPage10(_ lines: String) -> String { "GET /page?cb=10 HTTP/1.1\r\nHost: t.example\r\n\(lines)\r\n\r\n" }

    // MARK: L. Timeouts (client.header_timeout and client.body_timeout of 1 s)

    static let timeouts: [CorpusCase] = [
        // RFC 9112 §9.5 / nginx client_header_timeout (slowloris class).
        CorpusCase(
            "TO-01", "request head that never completes", stack: .shortClientTimeouts,
            .reject("GET /page HTTP/1.1\r\nHost: t.ex", 408, "header-timeout").with(timeout: 3)),
        // Same: a connection that sends nothing.
        CorpusCase(
            "TO-02", "connection that sends nothing", stack: .shortClientTimeouts, .reject("", 408, "header-timeout").with(timeout: 3)),
        // PL-06 / nginx client_body_timeout: an upload that stalls; the origin never gets a whole request.
        CorpusCase(
            "TO-03", "uncached upload stalls", stack: .shortClientTimeouts,
            CorpusStep(
                send: latin1("POST /submit HTTP/1.1\r\nHost: t.example\r\nContent-Length: 10\r\n\r\nhello"),
                responses: [.rejected(408, "body-timeout")], origin: [], timeout: 3)),
        // Pingora CVE-2025-4366: a body on a cached route that stalls: 408, nothing forwarded.
        CorpusCase(
            "TO-04", "Content-Length body on a cached route stalls", stack: .shortClientTimeouts,
            .reject("GET /cached HTTP/1.1\r\nHost: t.example\r\nContent-Length: 10\r\n\r\nhello", 408, "body-timeout").with(timeout: 3)),
        // PL-02 safe clause: a truncated chunked body times out and closes.
        CorpusCase(
            "TO-05", "truncated chunked body on a cached route", stack: .shortClientTimeouts,
            .reject("GET /cached HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 408, "body-timeout")
                .with(timeout: 3)),
        // RFC 9112 §9.3.2: a pipelined head that never completes, behind a good request.
        CorpusCase(
            "TO-06", "partial head pipelined behind a good request", stack: .shortClientTimeouts,
            CorpusStep(
                send: latin1("GET /p1 HTTP/1.1\r\nHost: t.example\r\n\r\nGET /p2 HTTP/1.1\r\nHost"),
                responses: [.echo("GET", "/p1"), .rejected(408, "header-timeout")], origin: [.req("GET", "/p1")], timeout: 3)),
    ]

    // MARK: M. Retries after a pooled upstream connection dies

    /// A first request whose upstream connection goes back to the pool, then `second` on the
    /// same client connection (so the same event loop, so the pooled connection).
    static func afterWarmUp(_ second: String, _ response: ResponseCheck, origin: [RequestCheck], retried: Bool) -> CorpusStep {
        CorpusStep(
            send: latin1("GET /warm HTTP/1.1\r\nHost: t.example\r\n\r\n"), then: latin1(second),
            responses: [.echo("GET", "/warm"), response], origin: [.req("GET", "/warm")] + origin,
            originCheck: { requests in
                guard requests.count >= 2 else { return nil }
                if requests[1].connection != requests[0].connection { return "the second request did not use the pooled connection" }
                if retried, requests.count >= 3, requests[2].connection == requests[1].connection {
                    return "the retry used the dead connection"
                }
                return nil
            })
    }

    static let retries: [CorpusCase] = [
        // ATS CVE-2025-31699 family (connection reuse); RFC 9110 §9.2.2: idempotent requests are re-sent once.
        CorpusCase(
            "RT-01", "GET on a pooled connection that dies is re-sent",
            afterWarmUp(
                "GET /close-once/a HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n", .echo("GET", "/close-once/a"),
                origin: [.req("GET", "/close-once/a"), .req("GET", "/close-once/a")], retried: true)),
        CorpusCase(
            "RT-02", "PUT with a body is re-sent with the same body",
            afterWarmUp(
                "PUT /close-once/b HTTP/1.1\r\nHost: t.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata",
                .echo("PUT", "/close-once/b", body: "data"),
                origin: [.req("PUT", "/close-once/b", body: "data"), .req("PUT", "/close-once/b", body: "data")], retried: true)),
        CorpusCase(
            "RT-03", "DELETE is re-sent",
            afterWarmUp(
                "DELETE /close-once/c HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n", .echo("DELETE", "/close-once/c"),
                origin: [.req("DELETE", "/close-once/c"), .req("DELETE", "/close-once/c")], retried: true)),
        // Same: re-sent once only; the second failure is a 502.
        CorpusCase(
            "RT-04", "GET that always dies is re-sent once, then 502",
            afterWarmUp(
                "GET /close-after-read HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n", .gatewayError(502, route: nil),
                origin: [.req("GET", "/close-after-read"), .req("GET", "/close-after-read")], retried: true)),
        // RFC 9110 §9.2.2: POST and PATCH are never re-sent.
        CorpusCase(
            "RT-05", "POST is never re-sent",
            afterWarmUp(
                "POST /close-after-read HTTP/1.1\r\nHost: t.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata",
                .gatewayError(502, route: nil), origin: [.req("POST", "/close-after-read", body: "data")], retried: false)),
        CorpusCase(
            "RT-06", "PATCH is never re-sent",
            afterWarmUp(
                "PATCH /close-after-read HTTP/1.1\r\nHost: t.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata",
                .gatewayError(502, route: nil), origin: [.req("PATCH", "/close-after-read", body: "data")], retried: false)),
        CorpusCase(
            "RT-07", "POST that would succeed on a retry is still not re-sent",
            afterWarmUp(
                "POST /close-once/d HTTP/1.1\r\nHost: t.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata",
                .gatewayError(502, route: nil), origin: [.req("POST", "/close-once/d", body: "data")], retried: false)),
    ]

    // MARK: N. The proxy's own error answers

    static let errors: [CorpusCase] = [
        // CPDoS DO-06: upstream down → 502 `{"error", "route"}` without the upstream's address.
        CorpusCase(
            "ER-01", "502 on an uncached route names no upstream", stack: .deadUpstream,
            .forward(
                "GET /submit HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n", [.gatewayError(502, route: nil)], origin: [],
                sentinel: .none)),
        // Same, on a cached route: the route is named, nothing is stored.
        CorpusCase(
            "ER-02", "502 on a cached route is never stored", stack: .deadUpstream,
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [.gatewayError(502, route: "/cached").with(cacheStatus: notStored("upstream-failed"))], origin: [], sentinel: .none),
            .forward(
                "GET /cached HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [.gatewayError(502, route: "/cached").with(cacheStatus: notStored("upstream-failed"))], origin: [], sentinel: .none)),
        // Same, with `errors: detail: true` the upstream is named.
        CorpusCase(
            "ER-03", "502 with errors.detail names the upstream", stack: .deadUpstreamWithDetail,
            .forward(
                "GET /submit HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [ResponseCheck(status: 502, close: true, bodyContains: ["\"upstream\": \"http://127.0.0.1:", "\"detail\":"])], origin: [],
                sentinel: .none)),
        // CPDoS DO-06 (origin slow → 504), never stored.
        CorpusCase(
            "ER-04", "504 when the origin does not answer, never stored", stack: .shortUpstreamTimeout,
            .forward(
                "GET /hang HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [.gatewayError(504, route: "/hang").with(cacheStatus: notStored("upstream-failed"))], origin: [.req("GET", "/hang")],
                sentinel: .none),
            .forward(
                "GET /hang HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n", [.gatewayError(504, route: "/hang")],
                origin: [.req("GET", "/hang")], sentinel: .none)),
    ]

    // MARK: O. Normalization: what the origin receives

    static let normalization: [CorpusCase] = [
        // RFC 9110 §9.1 (extension methods); the proxy parser's doc (M-SEARCH kept byte for byte).
        CorpusCase(
            "NO-01a", "M-SEARCH reaches the origin unchanged",
            .forward(line("M-SEARCH /ext HTTP/1.1"), [.echo("M-SEARCH", "/ext")], origin: [.req("M-SEARCH", "/ext")])),
        CorpusCase(
            "NO-01b", "FOO reaches the origin unchanged",
            .forward(line("FOO /ext HTTP/1.1"), [.echo("FOO", "/ext")], origin: [.req("FOO", "/ext")])),
        CorpusCase(
            "NO-01c", "PURGE on a cached route is forwarded, not interpreted",
            .forward(
                line("PURGE /cached HTTP/1.1"), [.echo("PURGE", "/cached", xCache: "BYPASS", cacheStatus: bypass("method"))],
                origin: [.req("PURGE", "/cached")])),
        // Squid SQUID-2020:11 class; RFC 3986: bytes outside RFC 3986 are percent-encoded.
        CorpusCase(
            "NO-02a", "{ } | \\ ^ < > \" [ ] in the target are percent-encoded",
            .forward(
                line("GET /enc/{a}|\\^<>\"[]?q={x} HTTP/1.1"), [.echo("GET", "/enc/%7Ba%7D%7C%5C%5E%3C%3E%22%5B%5D?q=%7Bx%7D")],
                origin: [.req("GET", "/enc/%7Ba%7D%7C%5C%5E%3C%3E%22%5B%5D?q=%7Bx%7D")])),
        CorpusCase(
            "NO-02b", "non-ASCII target bytes are percent-encoded",
            .forward(
                line("GET /caf\u{c3}\u{a9}?n=\u{e2}\u{82}\u{ac}\u{ff} HTTP/1.1"), [.echo("GET", "/caf%C3%A9?n=%E2%82%AC%FF")],
                origin: [.req("GET", "/caf%C3%A9?n=%E2%82%AC%FF")])),
        // CH-11/CH-12 safe clause; RFC 9112 §7.1: re-chunked upstream, trailers dropped.
        CorpusCase(
            "NO-03", "chunked body to an uncached route stays chunked, trailers dropped",
            .forward(
                chunkedUpload("5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"), [.echo("POST", "/upload", body: "hello world")],
                origin: [.req("POST", "/upload", body: "hello world", framing: .chunked)]
            ).with(originRawLacks: ["X-Trailer"])),
        // Same: a cached POST route reads the whole body first; it goes upstream with a length.
        CorpusCase(
            "NO-04", "chunked body to a cached POST route gets a Content-Length",
            .forward(
                "POST /post-cached HTTP/1.1\r\nHost: t.example\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                [.echo("POST", "/post-cached", body: "hello world", xCache: "MISS", cacheStatus: stored)],
                origin: [.req("POST", "/post-cached", body: "hello world", framing: .length(11))]
            ).with(originRawLacks: ["X-T"])),
        // Kettle 2018: the proxy's X-Forwarded-* and Forwarded replace the client's.
        CorpusCase(
            "NO-05", "X-Forwarded-* and Forwarded are the proxy's own",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\n"
                    + "X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n\r\n", [.echo("GET", "/api")],
                origin: [
                    .req(
                        "GET", "/api",
                        has: [
                            ("x-forwarded-for", "127.0.0.1"), ("x-forwarded-proto", "http"), ("x-forwarded-host", "t.example"),
                            ("forwarded", "for=127.0.0.1;host=\"t.example\";proto=http"),
                        ])
                ]
            ).with(originRawLacks: ["6.6.6.6", "evil.example", "https"])),
        // RFC 9112 §9.3: Connection: close on HTTP/1.1 closes after the response.
        CorpusCase(
            "NO-06", "Connection: close is honoured",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n",
                [.echo("GET", "/api").with(header: ("connection", "close"))],
                origin: [.req("GET", "/api")], sentinel: .none)),
        // RFC 9112 §9.3: an HTTP/1.0 keep-alive request keeps the connection, and says so.
        CorpusCase(
            "NO-07", "HTTP/1.0 keep-alive",
            .forward(
                "GET /api HTTP/1.0\r\nHost: t.example\r\nConnection: keep-alive\r\n\r\n",
                [.echo("GET", "/api").with(header: ("connection", "keep-alive"))], origin: [.req("GET", "/api")])),
        // The proxy never sends the client's Expect upstream, even without a body.
        CorpusCase(
            "NO-08", "Expect: 100-continue without a body",
            .forward(
                "GET /api HTTP/1.1\r\nHost: t.example\r\nExpect: 100-continue\r\n\r\n", [.echo("GET", "/api")],
                origin: [.req("GET", "/api", lacks: ["expect"])]
            ).with(clientLacks: ["100 Continue"])),
        // FR-03 ONE clause: a request with CL 0 and one with none both reach the origin unambiguously.
        CorpusCase(
            "NO-09", "POST without a body gets Content-Length: 0",
            .forward(
                "POST /api HTTP/1.1\r\nHost: t.example\r\n\r\n", [.echo("POST", "/api", body: "")],
                origin: [.req("POST", "/api", body: "", framing: .length(0))])),
    ]
}

// MARK: - Case model

/// Which stack a case runs on.
enum CorpusStack: Sendable, Hashable {
    /// ``Corpus/routes``, default limits, the ``RecordingOrigin`` behind.
    case standard
    /// `client.header_timeout` and `client.body_timeout` of 1 s.
    case shortClientTimeouts
    /// The upstream port has nothing listening.
    case deadUpstream
    /// Same, with `errors.detail: true`.
    case deadUpstreamWithDetail
    /// `upstream_timeout: 500ms`.
    case shortUpstreamTimeout

    var extra: String {
        switch self {
        case .standard, .deadUpstream: return ""
        case .shortClientTimeouts: return "client:\n  header_timeout: 1s\n  body_timeout: 1s"
        case .deadUpstreamWithDetail: return "errors:\n  detail: true"
        case .shortUpstreamTimeout: return "upstream_timeout: 500ms"
        }
    }

    var originIsUp: Bool { self != .deadUpstream && self != .deadUpstreamWithDetail }

    /// A last request with `Connection: close`: answered only if the proxy drained what came before.
    var sentinel: String {
        originIsUp
            ? "GET /sentinel HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"
            : "GET /cached/sentinel HTTP/1.1\r\nHost: t.example\r\nConnection: close\r\n\r\n"
    }

    var sentinelResponse: ResponseCheck {
        originIsUp ? ResponseCheck.echo("GET", "/sentinel").with(header: ("connection", "close")) : .gatewayError(502, route: "/cached/**")
    }
}

/// One case of the corpus.
struct CorpusCase: Sendable, CustomTestStringConvertible {
    let id: String
    let title: String
    let stack: CorpusStack
    let steps: [CorpusStep]

    init(_ id: String, _ title: String, stack: CorpusStack = .standard, _ steps: CorpusStep...) {
        self.id = id
        self.title = title
        self.stack = stack
        self.steps = steps
    }

    var testDescription: String { "\(id) \(title)" }

    /// Runs every step on a fresh stack whose upstream pools are warm (as in production: a
    /// pooled connection is handed over at once, so anything forwarded too early is written at
    /// once), then checks the proxy still serves (MISS, then HIT).
    func run() async throws {
        try await withCorpusStack(stack) { h, origin in
            if stack.originIsUp {
                // One connection per event loop of the harness (connections are spread round-robin).
                for _ in 0..<2 { _ = try await h.client.get("/warm-up") }
            }
            for (index, step) in steps.enumerated() {
                let problems = try await step.run(port: h.client.port, origin: origin, stack: stack)
                if !problems.isEmpty {
                    Issue.record("\(id) step \(index + 1) of \(steps.count):\n\(problems.joined(separator: "\n"))")
                }
            }
            guard stack.originIsUp else { return }
            let first = try await h.client.get("/cached/health")
            let second = try await h.client.get("/cached/health")
            #expect(first.status == .ok && first.xCache == "MISS", "\(id): health GET \(first.status) \(first.xCache ?? "-")")
            #expect(second.status == .ok && second.xCache == "HIT", "\(id): second health GET \(second.status) \(second.xCache ?? "-")")
        }
    }
}

/// Starts a RecordingOrigin and the harness pointed at it (or at a dead port), and stops both.
func withCorpusStack(_ stack: CorpusStack, _ body: (ProxyHarness, RecordingOrigin) async throws -> Void) async throws {
    let origin = try await RecordingOrigin.start(group: ProxyHarness.group)
    do {
        let port = stack.originIsUp ? origin.port : try freeLoopbackPort()
        try await withProxy(routes: Corpus.routes, extra: stack.extra, upstreamPort: port) { h in try await body(h, origin) }
    } catch {
        await origin.stop()
        throw error
    }
    await origin.stop()
}

/// When ``CorpusStep/then`` is sent.
enum StepTrigger: Sendable {
    /// After this many final responses.
    case responses(Int)
    /// After a 1xx (or a final response).
    case interim
}

/// A last request appended by the runner.
enum SentinelRule: Sendable {
    case none
    /// It must be answered (the proxy kept parsing correctly after the case's bytes).
    case required
    /// DRAIN-OR-CLOSE: it is answered (the body before it was drained) or the connection was
    /// closed before it.
    case drainOrClose
}

/// One connection: bytes sent, everything read until the proxy closes, both sides checked.
struct CorpusStep: Sendable {
    var send: [UInt8]
    /// Sent once `trigger` holds (with the sentinel after it, if any).
    var then: [UInt8]? = nil
    var trigger: StepTrigger = .responses(1)
    var sentinel: SentinelRule = .none
    /// The final responses, in order (the sentinel's is added by the runner).
    var responses: [ResponseCheck]
    /// Exactly the requests the origin must parse (the sentinel's is added by the runner); nil: not checked.
    var origin: [RequestCheck]?
    /// Not one byte reaches the origin.
    var originUntouched = false
    /// Text that must not appear in what the client received.
    var clientLacks: [String] = []
    /// Text that must not appear in the raw bytes the origin received.
    var originRawLacks: [String] = []
    /// A last check of the origin's requests (sentinel included); nil or a problem.
    var originCheck: (@Sendable ([RecordingOrigin.Request]) -> String?)? = nil
    /// 1xx responses expected before the final ones; nil: not checked.
    var interim: Int? = nil
    /// Seconds to wait for the proxy to close the connection.
    var timeout: TimeInterval = 5

    /// Refused with `status` and `detail`, then closed; nothing reaches the origin. A refusal is
    /// immediate, so the proxy gets 2 s to close.
    static func reject(_ request: String, _ status: Int, _ detail: String) -> CorpusStep {
        CorpusStep(send: latin1(request), responses: [.rejected(status, detail)], origin: [], originUntouched: true, timeout: 2)
    }

    /// Accepted: these responses, these origin requests, then (by default) a sentinel that must be answered.
    static func forward(_ request: String, _ responses: [ResponseCheck], origin: [RequestCheck]?, sentinel: SentinelRule = .required)
        -> CorpusStep
    {
        CorpusStep(send: latin1(request), sentinel: sentinel, responses: responses, origin: origin)
    }

    func with(timeout: TimeInterval) -> CorpusStep {
        var copy = self
        copy.timeout = timeout
        return copy
    }

    func with(originRawLacks: [String] = [], clientLacks: [String] = []) -> CorpusStep {
        var copy = self
        copy.originRawLacks += originRawLacks
        copy.clientLacks += clientLacks
        return copy
    }

    /// Runs the step on a new connection; returns the problems found (empty: passed).
    func run(port: Int, origin server: RecordingOrigin, stack: CorpusStack) async throws -> [String] {
        server.reset(counts: false)
        let sentinelBytes = sentinel == .none ? [] : latin1(stack.sentinel)
        let socket = try RawSocket(port: port)
        var problems: [String] = []
        var sent = send
        if let then {
            socket.send(send)
            let heads = responses.map(\.head)
            let ready = socket.read(
                until: { bytes in
                    let view = RawResponseStream(bytes, headResponses: heads)
                    switch trigger {
                    case .responses(let n): return view.finals.count >= n
                    case .interim: return !view.interim.isEmpty || !view.finals.isEmpty
                    }
                }, timeout: timeout)
            if !ready { problems.append("the proxy did not send \(trigger) before the rest of the request (closed: \(socket.closed))") }
            if !socket.closed {
                socket.send(then + sentinelBytes)
            }
            sent += then + sentinelBytes
        } else {
            socket.send(send + sentinelBytes)
            sent += sentinelBytes
        }
        socket.read(timeout: timeout)
        // Anything forwarded by mistake reaches the origin within a few milliseconds.
        try await Task.sleep(for: .milliseconds(originUntouched ? 20 : 5))

        var expected = responses
        if sentinel != .none { expected.append(stack.sentinelResponse) }
        let view = RawResponseStream(socket.received, headResponses: expected.map(\.head))
        let requests = server.requests
        let raw = server.rawText

        // The client's side.
        if !socket.closed { problems.append("the proxy did not close the connection within \(timeout) s") }
        let minimum = sentinel == .drainOrClose ? expected.count - 1 : expected.count
        if view.finals.count < minimum || view.finals.count > expected.count {
            problems.append(
                "expected \(minimum == expected.count ? "\(minimum)" : "\(minimum) or \(expected.count)") responses, got \(view.finals.count)"
            )
        }
        for (index, response) in view.finals.enumerated() where index < expected.count {
            problems += expected[index].problems(response).map { "response \(index + 1): \($0)" }
        }
        if !view.leftover.isEmpty { problems.append("unparsable bytes after the responses: \(escapeBytes(view.leftover))") }
        if let interim, view.interim.count != interim {
            problems.append("expected \(interim) interim responses, got \(view.interim.count)")
        }
        let clientText = String(decoding: socket.received, as: UTF8.self)
        for response in view.finals where (response.json?["uri"] as? String)?.contains("smuggled") == true {
            problems.append("the client got a response for /smuggled")
        }
        for text in clientLacks where clientText.contains(text) { problems.append("the client received \(text.debugDescription)") }

        // The origin's side.
        for request in requests where request.uri.contains("smuggled") { problems.append("the origin received a request for /smuggled") }
        for (index, request) in requests.enumerated() {
            problems += Self.forwardingProblems(request).map { "origin request \(index + 1): \($0)" }
        }
        if originUntouched, !(requests.isEmpty && raw.isEmpty) {
            problems.append("bytes reached the origin: \(escapeBytes(server.rawBytes))")
        }
        if var wanted = origin {
            let sentinelAnswered = view.finals.count == expected.count
            if stack.originIsUp, sentinel == .required || (sentinel == .drainOrClose && sentinelAnswered) {
                wanted.append(.req("GET", "/sentinel"))
            }
            if requests.count != wanted.count {
                problems.append("the origin parsed \(requests.count) requests, expected \(wanted.count)")
            }
            for (index, (request, check)) in zip(requests, wanted).enumerated() {
                problems += check.problems(request).map { "origin request \(index + 1): \($0)" }
            }
        }
        for text in originRawLacks where raw.contains(text) { problems.append("the origin received \(text.debugDescription)") }
        if let originCheck, let problem = originCheck(requests) { problems.append(problem) }

        let trace = ProcessInfo.processInfo.environment["CORPUS_TRACE"] != nil
        guard !problems.isEmpty || trace else { return [] }
        let report =
            problems.map { "  - \($0)" } + [
                "  sent:\n" + indent(escapeBytes(sent)),
                "  client got (closed: \(socket.closed)):\n" + indent(escapeBytes(socket.received)),
                "  origin parsed:\n" + indent(requests.isEmpty ? "(nothing)" : requests.map(\.description).joined(separator: "\n")),
                "  origin raw bytes:\n" + indent(raw.isEmpty ? "(none)" : escapeBytes(server.rawBytes)),
            ]
        if problems.isEmpty {
            // CORPUS_TRACE=1: the transcript of passing steps too.
            print("TRACE \(escapeBytes(Array(send.prefix(40))).split(separator: "\n").first ?? "")\n" + report.joined(separator: "\n"))
            return []
        }
        return report
    }

    /// The universal oracle for every request the origin parses: normalized framing, one Host,
    /// no hop-by-hop header, no trailers, and only the proxy's own forwarding headers.
    static func forwardingProblems(_ request: RecordingOrigin.Request) -> [String] {
        var problems: [String] = []
        let headers = request.headers
        if request.version != "HTTP/1.1" { problems.append("version \(request.version)") }
        if headers["host"].count != 1 { problems.append("\(headers["host"].count) Host headers") }
        if headers["content-length"].count > 1 { problems.append("several Content-Length headers") }
        if headers.contains(name: "content-length") && headers.contains(name: "transfer-encoding") {
            problems.append("both Content-Length and Transfer-Encoding")
        }
        if headers.contains(name: "transfer-encoding"), headers["transfer-encoding"] != ["chunked"] {
            problems.append("Transfer-Encoding \(headers["transfer-encoding"])")
        }
        for name in [
            "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authorization", "http2-settings", "expect",
            "x-forwarded-scheme", "x-forwarded-port", "x-forwarded-ssl", "x-forwarded-server",
        ] where headers.contains(name: name) {
            problems.append("\(name) was forwarded")
        }
        if headers["x-forwarded-for"] != ["127.0.0.1"] { problems.append("X-Forwarded-For \(headers["x-forwarded-for"])") }
        if headers["x-forwarded-proto"] != ["http"] { problems.append("X-Forwarded-Proto \(headers["x-forwarded-proto"])") }
        let forwarded = headers["forwarded"]
        if forwarded.count != 1 || !forwarded[0].hasPrefix("for=127.0.0.1;") || !forwarded[0].hasSuffix("proto=http") {
            problems.append("Forwarded \(forwarded)")
        }
        let forwardedHost = headers["x-forwarded-host"]
        if forwardedHost.count > 1 || (forwardedHost.count == 1 && forwardedHost != headers["host"]) {
            problems.append("X-Forwarded-Host \(forwardedHost) with Host \(headers["host"])")
        }
        if request.trailers.count > 0 { problems.append("trailers were forwarded: \(request.trailers)") }
        return problems
    }
}

/// What a final response must look like.
struct ResponseCheck: Sendable {
    var status: Int
    var xCache: String? = nil
    /// Exact, or a prefix when it ends with `*`.
    var cacheStatus: String? = nil
    /// `Connection: close` present (true) or absent (false); nil: not checked.
    var close: Bool? = nil
    /// A response to HEAD: no body follows the head.
    var head = false
    var echo: EchoCheck? = nil
    var bodyContains: [String] = []
    /// Header values that must be exactly these (one field each).
    var headers: [(String, String)] = []
    /// A refusal: JSON `{"error", "route"}` body with `Content-Type: application/json`.
    var refusalBody = false
    /// The proxy's 502/503/504: the JSON keys and the route named.
    var gatewayRoute: String?? = nil

    /// A refusal: `status`, `X-Cache: REJECTED`, `Cache-Status: cache-proxy; detail=…`, `Connection: close`.
    static func rejected(_ status: Int, _ detail: String) -> ResponseCheck {
        ResponseCheck(status: status, xCache: "REJECTED", cacheStatus: "cache-proxy; detail=\(detail)", close: true, refusalBody: true)
    }

    /// A 200 echo from the origin.
    static func echo(
        _ method: String, _ uri: String, body: String? = nil, xCache: String? = nil, cacheStatus: String? = nil, count: Int? = nil
    ) -> ResponseCheck {
        ResponseCheck(
            status: 200, xCache: xCache, cacheStatus: xCache == "HIT" && cacheStatus == nil ? Corpus.hit : cacheStatus,
            echo: EchoCheck(method, uri, body: body, count: count))
    }

    /// The proxy's own gateway error: `{"error": …, "route": …}` and nothing else.
    static func gatewayError(_ status: Int, route: String?) -> ResponseCheck {
        ResponseCheck(status: status, gatewayRoute: .some(route))
    }

    func with(header: (String, String)) -> ResponseCheck {
        var copy = self
        copy.headers.append(header)
        return copy
    }

    func with(cacheStatus: String) -> ResponseCheck {
        var copy = self
        copy.cacheStatus = cacheStatus
        return copy
    }

    func problems(_ response: RawResponse) -> [String] {
        var problems: [String] = []
        let summary =
            "\(response.status) x-cache=\(response.header("x-cache") ?? "-") cache-status=\(response.header("cache-status") ?? "-")"
        if response.status != status { problems.append("status \(response.status), expected \(status) (\(summary))") }
        if let xCache, response.header("x-cache") != xCache {
            problems.append("X-Cache \(response.header("x-cache") ?? "none"), expected \(xCache)")
        }
        if let cacheStatus {
            let actual = response.header("cache-status") ?? ""
            let matches = cacheStatus.hasSuffix("*") ? actual.hasPrefix(String(cacheStatus.dropLast())) : actual == cacheStatus
            if !matches { problems.append("Cache-Status \(actual.debugDescription), expected \(cacheStatus.debugDescription)") }
        }
        if let close {
            let closes = response.all("connection").contains { $0.lowercased() == "close" }
            if closes != close { problems.append(close ? "no Connection: close" : "unexpected Connection: close") }
        }
        if head, !response.body.isEmpty { problems.append("a HEAD response with a body") }
        if let echo { problems += echo.problems(response.json) }
        let text = String(decoding: response.body, as: UTF8.self)
        for part in bodyContains where !text.contains(part) { problems.append("body lacks \(part.debugDescription): \(text)") }
        for (name, value) in headers where response.all(name) != [value] {
            problems.append("\(name): \(response.all(name)), expected [\(value)]")
        }
        if refusalBody {
            if response.header("content-type") != "application/json" { problems.append("refusal without Content-Type: application/json") }
            if response.json?["error"] as? String == nil { problems.append("refusal body is not {\"error\": …}: \(text)") }
        }
        if let gatewayRoute {
            let json = response.json ?? [:]
            if Set(json.keys) != ["error", "route"] {
                problems.append("error body keys \(json.keys.sorted()), expected error and route: \(text)")
            }
            if let route = gatewayRoute {
                if json["route"] as? String != route {
                    problems.append("error body route \(String(describing: json["route"])), expected \(route)")
                }
            } else if !(json["route"] is NSNull) {
                problems.append("error body route \(String(describing: json["route"])), expected null")
            }
            if text.contains("127.0.0.1") { problems.append("error body names the upstream: \(text)") }
        }
        return problems
    }
}

/// What the origin's JSON echo must say.
struct EchoCheck: Sendable {
    var method: String
    var uri: String
    var body: String? = nil
    var count: Int? = nil

    init(_ method: String, _ uri: String, body: String? = nil, count: Int? = nil) {
        self.method = method
        self.uri = uri
        self.body = body
        self.count = count
    }

    func problems(_ json: [String: Any]?) -> [String] {
        guard let json else { return ["the body is not the origin's echo"] }
        var problems: [String] = []
        if json["method"] as? String != method { problems.append("echoed method \(json["method"] ?? "-"), expected \(method)") }
        if json["uri"] as? String != uri { problems.append("echoed uri \(json["uri"] ?? "-"), expected \(uri)") }
        if let body, json["body"] as? String != body {
            problems.append("echoed body \(String(describing: json["body"] ?? "-").debugDescription), expected \(body.debugDescription)")
        }
        if let count, json["count"] as? Int != count { problems.append("echoed count \(json["count"] ?? "-"), expected \(count)") }
        return problems
    }
}

/// How a forwarded request's body must be framed.
enum OriginFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// What one request received by the origin must look like.
struct RequestCheck: Sendable {
    var method: String
    var uri: String
    var body: [UInt8]? = nil
    var framing: OriginFraming? = nil
    /// Headers that must have exactly this one value.
    var has: [(String, String)] = []
    var lacks: [String] = []
    var custom: (@Sendable (RecordingOrigin.Request) -> String?)? = nil

    static func req(
        _ method: String, _ uri: String, body: String? = nil, framing: OriginFraming? = nil, has: [(String, String)] = [],
        lacks: [String] = [],
        custom: (@Sendable (RecordingOrigin.Request) -> String?)? = nil
    ) -> RequestCheck {
        RequestCheck(method: method, uri: uri, body: body.map(latin1), framing: framing, has: has, lacks: lacks, custom: custom)
    }

    func problems(_ request: RecordingOrigin.Request) -> [String] {
        var problems: [String] = []
        if request.method != method { problems.append("method \(request.method.debugDescription), expected \(method.debugDescription)") }
        if request.uri != uri { problems.append("target \(request.uri.debugDescription), expected \(uri.debugDescription)") }
        if let body, request.body != body { problems.append("body \(escapeBytes(request.body)), expected \(escapeBytes(body))") }
        if let framing {
            let actual: OriginFraming =
                request.headers.contains(name: "transfer-encoding")
                ? .chunked
                : request.headers.first(name: "content-length").flatMap(Int.init).map { OriginFraming.length($0) } ?? OriginFraming.none
            if actual != framing || (framing == .chunked) != request.chunked { problems.append("framing \(actual), expected \(framing)") }
        }
        for (name, value) in has where request.headers[name] != [value] {
            problems.append("\(name): \(request.headers[name]), expected [\(value.debugDescription)]")
        }
        for name in lacks where request.headers.contains(name: name) { problems.append("\(name) was forwarded") }
        if let custom, let problem = custom(request) { problems.append(problem) }
        return problems
    }
}

// MARK: - Reading responses

/// One response as the client received it.
struct RawResponse {
    var status: Int
    /// Lower-cased names.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }
    func all(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] }
}

/// The responses in a byte stream: interim (1xx) and final ones, and any bytes that do not parse.
struct RawResponseStream {
    var interim: [RawResponse] = []
    var finals: [RawResponse] = []
    var leftover: [UInt8] = []

    /// - Parameter headResponses: for each final response, whether it answers a HEAD (no body).
    init(_ bytes: [UInt8], headResponses: [Bool]) {
        var index = 0
        while index < bytes.count {
            guard let headEnd = search([13, 10, 13, 10], in: bytes, from: index) else { break }
            let lines = String(decoding: bytes[index..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
            let statusParts = lines[0].split(separator: " ", maxSplits: 2)
            guard lines[0].hasPrefix("HTTP/1."), statusParts.count >= 2, let status = Int(statusParts[1]) else { break }
            var headers: [(name: String, value: String)] = []
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
            }
            var response = RawResponse(status: status, headers: headers, body: [])
            var next = headEnd + 4
            let isHead = finals.count < headResponses.count && headResponses[finals.count]
            if status < 200 {
                interim.append(response)
                index = next
                continue
            }
            if !(isHead || status == 204 || status == 304) {
                if response.header("transfer-encoding")?.lowercased() == "chunked" {
                    guard let (body, end) = Self.dechunk(bytes, from: next) else { break }
                    response.body = body
                    next = end
                } else if let length = response.header("content-length").flatMap(Int.init) {
                    guard bytes.count - next >= length else { break }
                    response.body = Array(bytes[next..<(next + length)])
                    next += length
                } else {
                    response.body = Array(bytes[next...])
                    next = bytes.count
                }
            }
            finals.append(response)
            index = next
        }
        leftover = Array(bytes[index...])
    }

    private static func dechunk(_ bytes: [UInt8], from start: Int) -> ([UInt8], Int)? {
        var body: [UInt8] = []
        var index = start
        while true {
            guard let lineEnd = search([13, 10], in: bytes, from: index),
                let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16)
            else { return nil }
            index = lineEnd + 2
            if size == 0 { break }
            guard bytes.count >= index + size + 2 else { return nil }
            body += bytes[index..<(index + size)]
            index += size + 2
        }
        while true {
            guard let lineEnd = search([13, 10], in: bytes, from: index) else { return nil }
            defer { index = lineEnd + 2 }
            if lineEnd == index { break }
        }
        return (body, index)
    }
}

// MARK: - Bytes

/// Each scalar of `text` as one byte (Latin-1): `"\u{0}"` is NUL, `"\u{c3}\u{a9}"` is UTF-8 é.
func latin1(_ text: String) -> [UInt8] {
    text.unicodeScalars.map { scalar in
        precondition(scalar.value < 256, "non-Latin-1 scalar in a corpus request")
        return UInt8(scalar.value)
    }
}

/// Bytes as the advisories write them: `\r \n \t \xNN`, a line break after each `\n`, long runs shortened.
func escapeBytes(_ bytes: [UInt8]) -> String {
    var out = ""
    var index = 0
    while index < bytes.count {
        var run = 1
        while index + run < bytes.count, bytes[index + run] == bytes[index] { run += 1 }
        let byte = bytes[index]
        let shown: String
        switch byte {
        case 13: shown = "\\r"
        case 10: shown = "\\n"
        case 9: shown = "\\t"
        case 32...126: shown = String(UnicodeScalar(byte))
        default: shown = String(format: "\\x%02x", byte)
        }
        if run > 16 {
            out += "«\(shown)×\(run)»"
            index += run
        } else {
            out += shown
            if byte == 10 { out += "\n" }
            index += 1
        }
    }
    return out.count > 4000 ? String(out.prefix(4000)) + "…(\(bytes.count) bytes)" : out
}

private func indent(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }.joined(separator: "\n")
}

private func search(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
    guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
    var index = from
    while index <= haystack.count - needle.count {
        if haystack[index] == needle[0], haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        index += 1
    }
    return nil
}
