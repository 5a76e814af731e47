import Foundation
import NIOCore
import Testing
@testable import CacheProxy

/// The config keys of invalidation: `invalidate:`, route `tags:` and `body_key:`, top-level
/// `tags:` and `admin:`, `redis.purge_timeout`.
@Suite struct InvalidationConfigTests {
    /// A minimal valid config (lines 1–4) followed by `rest`, which starts on line 5.
    static func yaml(_ rest: String) -> String {
        "listen: 127.0.0.1:8080\nupstream: http://127.0.0.1:7000\nredis:\n  url: redis://127.0.0.1:6379/0\n" + rest
    }

    static func parse(_ rest: String) throws(ConfigError) -> ProxyConfiguration {
        try ProxyConfiguration.parse(yaml: yaml(rest), file: "inv.yaml")
    }

    /// The error `rest` gives; records an issue when there is none.
    static func error(_ rest: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
        #expect(throws: ConfigError.self, sourceLocation: sourceLocation) { try parse(rest) }
    }

    static let full = """
        defaults:
          max_body_bytes: 4096
        redis:
          url: redis://127.0.0.1:6379/0
          purge_timeout: 250ms
        routes:
          - path: /user/show_all_user/
            name: show_all_user
          - path: /user/show_one_user/
            methods: [POST]
            body_key: {fields: [nick_name]}
            tags: ["user:{body.nick_name}"]
          - path: /orders/*
            query: [user_id]
            body_key: json
            tags: ["orders-of:{query.user_id}", "order:{response.*.order_id}", "seg:{path.2}", "b:{body.anything}"]
          - path: /search
            methods: [POST]
            body_key: {format: json, ignore: [request_id]}
            tags: ["q:{body.q}"]
          - path: /raw
            methods: [POST]
            body_key: raw
            tags: ["r:{body.x}"]
        invalidate:
          - name: edit-user
            path: /user/edit_user/
            methods: [post, PUT]
            statuses: [200, 204]
            purge: [show_all_user, "user:{body.nick_name}"]
            soft: true
            max_body_bytes: 100
          - path: /users/*
            purge: ["user:{path.2}", "q:{query.id}"]
        tags:
          response_header: Cache-Tag
          strip_response_header: false
        admin:
          listen: 0.0.0.0:8081
          token: 0123456789abcdef
          purge_method: true
        """

    // MARK: Acceptance

    @Test func parsesEveryInvalidationKey() throws {
        let config = try ProxyConfiguration.parse(
            yaml: "listen: 127.0.0.1:8080\nupstream: http://127.0.0.1:7000\n" + Self.full, file: "full.yaml")
        #expect(config.redis.purgeTimeout == .milliseconds(250))

        #expect(config.routes.map(\.bodyKey) == [.raw, .json(.only(["nick_name"])), .json(.all), .json(.ignoring(["request_id"])), .raw])
        #expect(config.routes[0].tags.isEmpty)
        #expect(config.routes[1].tags.map(\.description) == ["user:{body.nick_name}"])
        #expect(
            config.routes[2].tags.map(\.description) == [
                "orders-of:{query.user_id}", "order:{response.*.order_id}", "seg:{path.2}", "b:{body.anything}",
            ])
        #expect(config.routes[4].tags.map(\.sources) == [[.body(["x"])]])

        #expect(config.invalidate.count == 2)
        let edit = config.invalidate[0]
        #expect(edit.name == "edit-user")
        #expect(edit.path.description == "/user/edit_user/")
        #expect(edit.methods == ["POST", "PUT"])
        #expect(edit.statuses == [200, 204])
        #expect(edit.purge.map(\.description) == ["show_all_user", "user:{body.nick_name}"])
        #expect(edit.soft)
        #expect(edit.maxBodyBytes == 100)
        #expect(edit.readsBody)

        let users = config.invalidate[1]
        #expect(users.name == "DELETE,PATCH,POST,PUT /users/*")
        #expect(users.methods == ["POST", "PUT", "PATCH", "DELETE"])
        #expect(users.statuses == nil)
        #expect(users.purge.map(\.sources) == [[.path(2)], [.query("id")]])
        #expect(!users.soft)
        #expect(users.maxBodyBytes == 4096)  // defaults.max_body_bytes
        #expect(!users.readsBody)

        #expect(config.tags == TagSettings(responseHeader: "cache-tag", stripResponseHeader: false))
        #expect(
            config.admin == AdminSettings(listen: HostAndPort(host: "0.0.0.0", port: 8081), token: "0123456789abcdef", purgeMethod: true))
    }

    @Test func defaultsWhenTheKeysAreAbsent() throws {
        let config = try Self.parse("routes:\n  - path: /a\n")
        #expect(config.invalidate.isEmpty)
        #expect(config.routes[0].tags.isEmpty)
        #expect(config.routes[0].bodyKey == .raw)
        #expect(config.tags == TagSettings(responseHeader: "surrogate-key", stripResponseHeader: true))
        #expect(config.admin == AdminSettings(listen: nil, token: nil, purgeMethod: false))
        #expect(config.redis.purgeTimeout == .seconds(1))
        // Without defaults.max_body_bytes a rule reads up to 1 MiB.
        let rule = try Self.parse("invalidate:\n  - path: /a\n    purge: [a]\n").invalidate[0]
        #expect(rule.maxBodyBytes == 1 << 20)
    }

    /// `statuses` absent: any 2xx; given: exactly those.
    @Test(arguments: [200, 201, 204, 299, 199, 300, 304, 404, 500])
    func triggeringStatuses(status: Int) {
        let pattern = try! PathPattern("/a")
        let byDefault = InvalidationRule(path: pattern, purge: [])
        #expect(byDefault.triggers(status: status) == (200...299).contains(status))
        let listed = InvalidationRule(path: pattern, statuses: [204, 404], purge: [])
        #expect(listed.triggers(status: status) == [204, 404].contains(status))
    }

    @Test(arguments: ["none", "None", "off", "false", "no"])
    func theOriginTagHeaderCanBeTurnedOff(word: String) throws {
        #expect(try Self.parse("tags:\n  response_header: \(word)\n").tags.responseHeader == nil)
    }

    @Test(arguments: ["127.0.0.1:8081", "127.1.2.3:8081", "localhost:8081", "[::1]:8081"])
    func aLoopbackAdminListenerNeedsNoToken(listen: String) throws {
        let admin = try Self.parse("admin:\n  listen: \"\(listen)\"\n").admin
        #expect(admin.listen != nil)
        #expect(admin.token == nil)
        #expect(!admin.purgeMethod)
    }

    @Test func theTokenCanComeFromTheEnvironment() throws {
        let name = "CACHE_PROXY_TEST_TOKEN_\(UInt32.random(in: 0...UInt32.max))"
        setenv(name, "env-token-0123456789", 1)
        defer { unsetenv(name) }
        let admin = try Self.parse("admin:\n  listen: 0.0.0.0:8081\n  token_env: \(name)\n  purge_method: true\n").admin
        #expect(admin.token == "env-token-0123456789")
        #expect(admin.purgeMethod)
    }

    @Test func aTokenOfExactly16PrintableCharactersIsEnough() throws {
        #expect(try Self.parse("admin:\n  token: \"!#$%&()*+-./0123\"\n").admin.token == "!#$%&()*+-./0123")
    }

    @Test func pathPlaceholdersAreCheckedAgainstThePattern() throws {
        // A `**` pattern may have any number of segments; `*` is a segment.
        let config = try Self.parse(
            """
            invalidate:
              - path: /a/**
                purge: ["{path.9}"]
              - path: /a/*/b
                purge: ["{path.1}-{path.2}-{path.3}"]
            """)
        #expect(config.invalidate.map { $0.purge.map(\.sources) } == [[[.path(9)]], [[.path(1), .path(2), .path(3)]]])
    }

    // MARK: Rejections

    /// Each bad config names the file, the line, the key path and what is wrong.
    @Test(arguments: [
        // invalidate
        ("invalidate:\n  - purge: [a]\n", "inv.yaml:6: invalidate[0].path: required"),
        ("invalidate:\n  - path: /a\n", "inv.yaml:6: invalidate[0].purge: required"),
        ("invalidate: /a\n", "inv.yaml:5: invalidate: expected a list"),
        ("invalidate:\n  - path: /a\n    purge: a\n", "inv.yaml:7: invalidate[0].purge: expected a list"),
        (
            "invalidate:\n  - path: /a\n    purge: [a]\n    purges: [b]\n",
            "inv.yaml:8: invalidate[0].purges: unknown key (did you mean \"purge\"?)"
        ),
        ("invalidate:\n  - path: a\n    purge: [a]\n", "inv.yaml:6: invalidate[0].path: bad path pattern \"a\": must start with \"/\""),
        (
            "invalidate:\n  - path: /a\n    methods: [GET]\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].methods[0]: GET does not change anything: invalidation rules are for POST, PUT, PATCH and DELETE"
        ),
        (
            "invalidate:\n  - path: /a\n    methods: [POST, head]\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].methods[1]: HEAD does not change anything"
        ),
        (
            "invalidate:\n  - path: /a\n    methods: [OPTIONS]\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].methods[0]: OPTIONS does not change anything"
        ),
        (
            "invalidate:\n  - path: /a\n    methods: [PURGE]\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].methods[0]: unknown method \"PURGE\" (expected DELETE, PATCH, POST, PUT)"
        ),
        (
            "invalidate:\n  - path: /a\n    methods: []\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].methods: must list at least one method"
        ),
        (
            "invalidate:\n  - path: /a\n    statuses: [200, 600]\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].statuses[1]: expected a whole number from 100 to 599, got \"600\""
        ),
        ("invalidate:\n  - path: /a\n    soft: maybe\n    purge: [a]\n", "inv.yaml:7: invalidate[0].soft: expected true or false"),
        (
            "invalidate:\n  - path: /a\n    max_body_bytes: -1\n    purge: [a]\n",
            "inv.yaml:7: invalidate[0].max_body_bytes: expected a whole number from 0 to 1073741824"
        ),
        ("invalidate:\n  - path: /a\n    purge: [\"\"]\n", "inv.yaml:7: invalidate[0].purge[0]: bad tag \"\": a tag must not be empty"),
        (
            "invalidate:\n  - path: /a\n    purge: [ok, \"user:{body.nick_name\"]\n",
            "inv.yaml:7: invalidate[0].purge[1]: bad tag \"user:{body.nick_name\": unclosed \"{\""
        ),
        (
            "invalidate:\n  - path: /a\n    purge: [\"{cookie.sid}\"]\n",
            "inv.yaml:7: invalidate[0].purge[0]: bad tag \"{cookie.sid}\": placeholder {cookie.sid}: unknown source \"cookie\""
        ),
        (
            "invalidate:\n  - path: /a/*\n    purge: [\"{path.0}\"]\n",
            "inv.yaml:7: invalidate[0].purge[0]: bad tag \"{path.0}\": placeholder {path.0}: expected {path.N}"
        ),
        (
            "invalidate:\n  - path: /a\n    purge: [\"{query.a.b}\"]\n",
            "inv.yaml:7: invalidate[0].purge[0]: bad tag \"{query.a.b}\": placeholder {query.a.b}: a query parameter has no fields"
        ),
        (
            "invalidate:\n  - path: /a\n    purge: [\"a}b\"]\n",
            "inv.yaml:7: invalidate[0].purge[0]: bad tag \"a}b\": unmatched \"}\""
        ),
        (
            "invalidate:\n  - path: /orders/\n    purge: [x, \"order:{response.*.order_id}\"]\n",
            "inv.yaml:7: invalidate[0].purge: tag \"order:{response.*.order_id}\": {response.…} is not available here"
        ),
        (
            "invalidate:\n  - path: /users/*\n    purge: [\"user:{path.3}\"]\n",
            "inv.yaml:7: invalidate[0].purge: tag \"user:{path.3}\": {path.3} does not exist in /users/* (segments: 1 to 2)"
        ),
        (
            "invalidate:\n  - path: /user/edit_user/\n    purge: [\"user:{path.3}\"]\n",
            "inv.yaml:7: invalidate[0].purge: tag \"user:{path.3}\": {path.3} does not exist in /user/edit_user/"
        ),
        (
            "invalidate:\n  - path: /a\n    purge: [a]\n  - path: /b\n    purge: [\"{path.2}\"]\n",
            "inv.yaml:9: invalidate[1].purge: tag \"{path.2}\": {path.2} does not exist in /b"
        ),
        // route tags and body_key
        ("routes:\n  - path: /a\n    tags: a\n", "inv.yaml:7: routes[0].tags: expected a list"),
        (
            "routes:\n  - path: /a\n    tags: [\"{nope}\"]\n",
            "inv.yaml:7: routes[0].tags[0]: bad tag \"{nope}\": placeholder {nope} must be"
        ),
        (
            "routes:\n  - path: /a/*\n    tags: [\"x:{path.3}\"]\n",
            "inv.yaml:7: routes[0].tags: tag \"x:{path.3}\": {path.3} does not exist in /a/* (segments: 1 to 2)"
        ),
        (
            "routes:\n  - path: /a\n    query: [page]\n    tags: [\"u:{query.user_id}\"]\n",
            "inv.yaml:8: routes[0].tags: tag \"u:{query.user_id}\": query parameter \"user_id\" is not in this route's key (query: [\"page\"])"
        ),
        (
            "routes:\n  - path: /a\n    methods: [POST]\n    body_key: {fields: [nick_name]}\n    tags: [\"u:{body.user_id}\"]\n",
            "inv.yaml:9: routes[0].tags: tag \"u:{body.user_id}\": body field \"user_id\" is not in this route's key (body_key fields: [\"nick_name\"])"
        ),
        (
            "routes:\n  - path: /a\n    methods: [POST]\n    body_key: {ignore: [request_id]}\n    tags: [\"r:{body.request_id.x}\"]\n",
            "inv.yaml:9: routes[0].tags: tag \"r:{body.request_id.x}\": body field \"request_id\" is ignored by this route's body_key"
        ),
        (
            "routes:\n  - path: /a\n    methods: [POST]\n    body_key: {fields: [a], ignore: [b]}\n",
            "inv.yaml:8: routes[0].body_key.fields: give fields or ignore, not both"
        ),
        (
            "routes:\n  - path: /a\n    body_key: jsn\n",
            "inv.yaml:7: routes[0].body_key: expected raw or json (or a mapping with format, fields, ignore), got \"jsn\""
        ),
        (
            "routes:\n  - path: /a\n    body_key: {format: xml, fields: [a]}\n",
            "inv.yaml:7: routes[0].body_key.format: fields and ignore need format json, got \"xml\""
        ),
        ("routes:\n  - path: /a\n    body_key: {fields: []}\n", "inv.yaml:7: routes[0].body_key.fields: must list at least one field"),
        (
            "routes:\n  - path: /a\n    body_key: {filds: [a]}\n",
            "inv.yaml:7: routes[0].body_key.filds: unknown key (did you mean \"fields\"?)"
        ),
        // tags
        (
            "tags:\n  response_header: \"Surrogate Key\"\n",
            "inv.yaml:6: tags.response_header: \"Surrogate Key\" is not a header name (or none)"
        ),
        ("tags:\n  strip_response_header: sometimes\n", "inv.yaml:6: tags.strip_response_header: expected true or false"),
        ("tags:\n  header: X\n", "inv.yaml:6: tags.header: unknown key"),
        // admin
        (
            "admin:\n  listen: 0.0.0.0:8081\n",
            "inv.yaml:6: admin.listen: 0.0.0.0:8081 is not a loopback address: set admin.token (or admin.token_env)"
        ),
        ("admin:\n  listen: \"[::]:8081\"\n", "inv.yaml:6: admin.listen: [::]:8081 is not a loopback address"),
        ("admin:\n  purge_method: true\n", "inv.yaml:6: admin.purge_method: the PURGE method needs admin.token (or admin.token_env)"),
        (
            "admin:\n  listen: 127.0.0.1:8081\n  purge_method: true\n",
            "inv.yaml:7: admin.purge_method: the PURGE method needs admin.token"
        ),
        ("admin:\n  token: short-token\n", "inv.yaml:6: admin.token: the token must be at least 16 characters"),
        ("admin:\n  token: \"0123456789abcdef 0\"\n", "inv.yaml:6: admin.token: the token must be printable ASCII without spaces"),
        ("admin:\n  token: \"0123456789abcdefé\"\n", "inv.yaml:6: admin.token: the token must be printable ASCII without spaces"),
        ("admin:\n  token: 0123456789abcdef\n  token_env: T\n", "inv.yaml:6: admin.token: give token or token_env, not both"),
        (
            "admin:\n  token_env: CACHE_PROXY_TEST_SURELY_UNSET_VARIABLE\n",
            "inv.yaml:6: admin.token_env: the environment variable CACHE_PROXY_TEST_SURELY_UNSET_VARIABLE is not set (or empty)"
        ),
        ("admin:\n  listen: 127.0.0.1\n", "inv.yaml:6: admin.listen: expected host:port"),
        ("admin:\n  purge: true\n", "inv.yaml:6: admin.purge: unknown key"),
    ])
    func badConfigsSayWhereAndWhat(rest: String, expected: String) {
        let error = Self.error(rest)
        #expect(error?.file == "inv.yaml")
        #expect(error?.description.hasPrefix(expected) == true, "\(String(describing: error))")
    }

    @Test(arguments: [("0s", "must be greater than zero"), ("soon", "bad duration \"soon\"")])
    func badPurgeTimeouts(value: String, message: String) {
        let yaml = "listen: 127.0.0.1:8080\nupstream: http://x:1\nredis:\n  url: redis://h\n  purge_timeout: \(value)\n"
        let error = #expect(throws: ConfigError.self) { try ProxyConfiguration.parse(yaml: yaml, file: "p.yaml") }
        #expect(error?.description.hasPrefix("p.yaml:5: redis.purge_timeout: \(message)") == true, "\(String(describing: error))")
    }

    @Test func anEmptyTokenVariableIsAnError() {
        let name = "CACHE_PROXY_TEST_EMPTY_\(UInt32.random(in: 0...UInt32.max))"
        setenv(name, "", 1)
        defer { unsetenv(name) }
        let error = Self.error("admin:\n  token_env: \(name)\n")
        #expect(error?.key == "admin.token_env")
        #expect(error?.message == "the environment variable \(name) is not set (or empty)")
    }

    @Test func aShortTokenFromTheEnvironmentNamesTheVariableKey() {
        let name = "CACHE_PROXY_TEST_SHORT_\(UInt32.random(in: 0...UInt32.max))"
        setenv(name, "short", 1)
        defer { unsetenv(name) }
        let error = Self.error("admin:\n  token_env: \(name)\n")
        #expect(error?.key == "admin.token_env")
        #expect(error?.line == 6)
        #expect(error?.message == "the token must be at least 16 characters")
    }

    /// The token's value never appears in an error about it.
    @Test func errorsDoNotEchoTheToken() {
        let error = Self.error("admin:\n  token: \"secret-but-has space\"\n")
        #expect(error?.description.contains("secret") == false)
    }

    /// A host name that merely starts with "127." is not a loopback address: it can resolve to
    /// any interface, so a listener on it needs the token like any other.
    @Test func aHostNameStartingWith127IsNotLoopback() {
        let error = Self.error("admin:\n  listen: 127.example.com:8081\n")
        #expect(error?.key == "admin.listen")
    }
}
