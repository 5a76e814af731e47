import Foundation
import NIOCore
import Testing
@testable import CacheProxy

@Suite struct ProxyConfigurationTests {
    @Test func routesAreValuesThoughTheirFieldsAreShared() throws {
        let original = Route(name: "a", path: try PathPattern("/a/*"), ttl: .seconds(5), vary: ["X-A"])
        var copy = original
        copy.ttl = .seconds(9)
        copy.vary.append("x-b")
        copy.name = "b"
        #expect(original.ttl == .seconds(5) && original.vary == ["x-a"] && original.name == "a")
        #expect(copy.ttl == .seconds(9) && copy.vary == ["x-a", "x-b"] && copy.name == "b")
        #expect(copy.path == original.path)
    }

    static let full = """
        listen: 127.0.0.1:8080
        upstream: http://127.0.0.1:7000
        upstream_timeout: 5s
        upstream_read_timeout: 20s
        upstream_max_connections: 64
        upstream_max_waiting: 10
        preserve_host: false
        client:
          header_timeout: 3s
          body_timeout: 4s
          keepalive_timeout: 5s
          max_request_line_bytes: 4096
          max_header_bytes: 16384
          max_headers: 50
          max_pipelined_requests: 4
        errors:
          detail: true
        redis:
          url: redis://:pw@127.0.0.1:6380/2
          key_prefix: "app:"
          timeout: 20ms
        defaults:
          ttl: 1m
          max_body_bytes: 2048
          statuses: [200, 203]
          bypass_headers: [X-Original-URL]
        routes:
          - path: /user/show_all_user/
            methods: [GET]
            ttl: 500ms
          - path: /user/show_one_user/
            methods: [post]
          - path: /order/**
            query: [user_id, page]
            vary: [Accept-Language]
            name: orders
            statuses: [200, 404]
            max_body_bytes: 10
            bypass_headers: [X-Custom-Override]
        """

    @Test func parsesEveryKey() throws {
        let config = try ProxyConfiguration.parse(yaml: Self.full, file: "full.yaml")
        #expect(config.listen == HostAndPort(host: "127.0.0.1", port: 8080))
        #expect(config.upstream == UpstreamURL(host: "127.0.0.1", port: 7000))
        #expect(config.upstreamTimeout == .seconds(5))
        #expect(config.preserveHost == false)
        #expect(config.redis.url == RedisURL(host: "127.0.0.1", port: 6380, password: "pw", database: 2))
        #expect(config.redis.keyPrefix == "app:")
        #expect(config.redis.timeout == .milliseconds(20))
        #expect(config.defaults.ttl == .minutes(1))
        #expect(config.routes.count == 3)
        #expect(config.routes[0].methods == ["GET"])
        #expect(config.routes[0].ttl == .milliseconds(500))
        #expect(config.routes[0].statuses == [200, 203])
        #expect(config.routes[0].maxBodyBytes == 2048)
        #expect(config.routes[1].methods == ["POST"])
        #expect(config.routes[1].ttl == .minutes(1))
        #expect(config.routes[2].query == .only(["user_id", "page"]))
        #expect(config.routes[2].vary == ["accept-language"])
        #expect(config.routes[2].name == "orders")
        #expect(config.routes[2].statuses == [200, 404])
        #expect(config.routes[2].maxBodyBytes == 10)
        #expect(config.upstreamReadTimeout == .seconds(20))
        #expect(config.upstreamMaxConnections == 64)
        #expect(config.upstreamMaxWaiting == 10)
        #expect(
            config.client
                == ClientSettings(
                    headerTimeout: .seconds(3), bodyTimeout: .seconds(4), keepAliveTimeout: .seconds(5), maxRequestLineBytes: 4096,
                    maxHeaderBytes: 16384, maxHeaderCount: 50, maxPipelinedRequests: 4))
        #expect(config.errorDetail)
        #expect(config.routes[0].bypassHeaders == ["x-original-url"])
        #expect(config.routes[2].bypassHeaders == ["x-custom-override"])
    }

    @Test func appliesDefaults() throws {
        let config = try ProxyConfiguration.parse(
            yaml: """
                listen: 0.0.0.0:80
                upstream: http://api.internal
                redis:
                  url: redis://localhost
                routes:
                  - path: /a
                """, file: "min.yaml")
        #expect(config.upstream.port == 80)
        #expect(config.upstreamTimeout == .seconds(30))
        #expect(config.preserveHost)
        #expect(config.redis.keyPrefix == "cache-proxy:")
        #expect(config.redis.timeout == .milliseconds(50))
        #expect(config.routes[0].methods == ["GET", "HEAD"])
        #expect(config.routes[0].ttl == .seconds(30))
        #expect(config.routes[0].statuses == [200])
        #expect(config.routes[0].maxBodyBytes == 1 << 20)
        #expect(config.routes[0].query == .all)
        #expect(config.routes[0].name == "/a")
    }

    @Test func exampleConfigsAreValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        for name in ["config/example.yaml", "config/flask-api.yaml"] {
            _ = try ProxyConfiguration.load(path: root.appendingPathComponent(name).path)
        }
    }

    /// Each bad config names the file, the line, the key and what is wrong.
    @Test(arguments: [
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a\n    mehtods: [GET]\n",
            "bad.yaml:7: routes[0].mehtods: unknown key (did you mean \"methods\"?)"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\ndefaults:\n  ttl: 30 sec\n",
            "bad.yaml:6: defaults.ttl: bad duration \"30 sec\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: ftp://x:1\nredis:\n  url: redis://h\n",
            "bad.yaml:2: upstream: bad URL \"ftp://x:1\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: http://h:6379\n",
            "bad.yaml:4: redis.url: bad URL: must start with \"redis://\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a/**/b\n",
            "bad.yaml:6: routes[0].path: bad path pattern \"/a/**/b\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: order\n",
            "bad.yaml:6: routes[0].path: bad path pattern \"order\": must start with \"/\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a\n    methods: [GET, FETCH]\n",
            "bad.yaml:7: routes[0].methods[1]: unknown method \"FETCH\""
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a\n    methods: [DELETE]\n",
            "bad.yaml:7: routes[0].methods[0]: method DELETE cannot be cached"
        ),
        (
            "listen: localhost\nupstream: http://x:1\nredis:\n  url: redis://h\n",
            "bad.yaml:1: listen: expected host:port"
        ),
        (
            "upstream: http://x:1\nredis:\n  url: redis://h\n",
            "bad.yaml:1: listen: required"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\ndefaults:\n  statuses: [200, 999]\n",
            "bad.yaml:6: defaults.statuses[1]: expected a whole number from 100 to 599"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nupstream_timeout: 0s\n",
            "bad.yaml:5: upstream_timeout: must be greater than zero"
        ),
        ("listen: [127.0.0.1:8080\n", "bad.yaml:2: not valid YAML: did not find expected"),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\ndefaults:\n  statuses: [200, 502]\n",
            "bad.yaml:6: defaults.statuses[1]: status 502 is never stored"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a\n    statuses: [431]\n",
            "bad.yaml:7: routes[0].statuses[0]: status 431 is never stored"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\ndefaults:\n  ttl: 99999999999999999999h\n",
            "bad.yaml:6: defaults.ttl: duration \"99999999999999999999h\" is too long (at most 10 years)"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nclient:\n  max_headers: 0\n",
            "bad.yaml:6: client.max_headers: expected a whole number from 1 to 10000"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nclient:\n  header_timeot: 1s\n",
            "bad.yaml:6: client.header_timeot: unknown key (did you mean \"header_timeout\"?)"
        ),
        (
            "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nerrors:\n  detail: maybe\n",
            "bad.yaml:6: errors.detail: expected true or false"
        ),
    ])
    func badConfigsSayWhereAndWhat(yaml: String, expected: String) {
        let error = #expect(throws: ConfigError.self) { try ProxyConfiguration.parse(yaml: yaml, file: "bad.yaml") }
        #expect(error?.description.hasPrefix(expected) == true, "\(String(describing: error))")
    }

    @Test func missingFileIsAClearError() {
        let error = #expect(throws: ConfigError.self) { try ProxyConfiguration.load(path: "/nonexistent/cache-proxy.yaml") }
        #expect(error?.description.hasPrefix("/nonexistent/cache-proxy.yaml: cannot read the file") == true)
    }

    @Test(arguments: [("30s", 30_000), ("500ms", 500), ("5m", 300_000), ("1h", 3_600_000), ("30", 30_000), ("0.25", 250), ("1.5s", 1500)])
    func durations(text: String, milliseconds: Int64) {
        #expect(DurationParser.parse(text) == .milliseconds(milliseconds))
    }

    @Test(arguments: ["", "s", "30 sec", "-1s", "1d", "abc", "1e3", "99999999999999999999h", "3000000000000000000"])
    func badDurations(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }
}

/// `cache-proxy check` as a user runs it: the real binary, its output and exit status.
@Suite struct CheckCommandTests {
    static var binary: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("cache-proxy").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let binary = try #require(Self.binary, "the cache-proxy binary is built next to the tests")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }

    @Test func goodConfigPrintsOK() throws {
        let file = NSTemporaryDirectory() + "good-\(UUID().uuidString).yaml"
        try ProxyConfigurationTests.full.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try run(["check", "--config", file])
        #expect(result.status == 0)
        #expect(result.stdout == "OK\n")
    }

    @Test func badConfigExitsOneAndSaysWhere() throws {
        let file = NSTemporaryDirectory() + "bad-\(UUID().uuidString).yaml"
        try "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\nroutes:\n  - path: /a\n    methods: [GTE]\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try run(["check", "--config", file])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("\(file):7: routes[0].methods[0]: unknown method \"GTE\""))
        // serve refuses it the same way
        let serve = try run(["--config", file])
        #expect(serve.status == 1)
        #expect(serve.stderr.contains("unknown method \"GTE\""))
    }
}
