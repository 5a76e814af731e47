import Foundation
import NIOCore
import Yams

extension ProxyConfiguration {
    /// Reads and validates a YAML config file. Throws ``ConfigError`` naming the file, the
    /// line, the key and what is wrong; unknown keys are errors, not ignored.
    public static func load(path: String) throws(ConfigError) -> ProxyConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(yaml: text, file: path)
    }

    /// Validates YAML text; `file` is used in error messages.
    public static func parse(yaml: String, file: String) throws(ConfigError) -> ProxyConfiguration {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigError(file: file, line: error.line, key: "", message: "not valid YAML: \(error.problem)")
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "not valid YAML: \(error)")
        }
        guard let root else {
            throw ConfigError(file: file, line: nil, key: "", message: "the file is empty")
        }
        return try ConfigReader(file: file).configuration(root)
    }
}

extension YamlError {
    fileprivate var line: Int? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    fileprivate var problem: String {
        switch self {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        default: return "\(self)"
        }
    }
}

/// Walks the YAML node tree, validating as it goes; every error carries the node's line.
private struct ConfigReader {
    let file: String

    static let cacheableMethods: Set<String> = ["GET", "HEAD", "POST"]
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]

    func fail(_ node: Node?, _ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node?.mark?.line, key: key, message: message)
    }

    /// The pairs of a mapping, rejecting unknown and duplicate keys.
    func mapping(_ node: Node, _ key: String, allowed: [String]) throws(ConfigError) -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw fail(node, key, "expected a mapping of keys (\(allowed.joined(separator: ", ")))")
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw fail(keyNode, key, "keys must be plain words") }
            let name = scalar.string
            let path = key.isEmpty ? name : "\(key).\(name)"
            guard allowed.contains(name) else {
                let hint = Self.closest(name, in: allowed).map { " (did you mean \"\($0)\"?)" } ?? ""
                throw fail(keyNode, path, "unknown key\(hint); allowed here: \(allowed.joined(separator: ", "))")
            }
            guard result[name] == nil else { throw fail(keyNode, path, "given twice") }
            result[name] = value
        }
        return result
    }

    func string(_ node: Node, _ key: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node, !(scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string)) else {
            throw fail(node, key, "expected a single value")
        }
        return scalar.string
    }

    func duration(_ node: Node, _ key: String, allowZero: Bool = false) throws(ConfigError) -> TimeAmount {
        let text = try string(node, key)
        guard let value = DurationParser.parse(text) else {
            if DurationParser.exceedsMaximum(text) { throw fail(node, key, "duration \"\(text)\" is too long (at most 10 years)") }
            throw fail(node, key, "bad duration \"\(text)\" (use e.g. 30s, 500ms, 5m, or a number of seconds)")
        }
        guard allowZero || value > .zero else { throw fail(node, key, "must be greater than zero") }
        return value
    }

    func integer(_ node: Node, _ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(node, key)
        guard let value = Int(text.replacingOccurrences(of: "_", with: "")), range.contains(value) else {
            throw fail(node, key, "expected a whole number from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    func bool(_ node: Node, _ key: String) throws(ConfigError) -> Bool {
        switch try string(node, key).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw fail(node, key, "expected true or false, got \"\(other)\"")
        }
    }

    func list(_ node: Node, _ key: String) throws(ConfigError) -> [(Node, String)] {
        guard case .sequence(let sequence) = node else { throw fail(node, key, "expected a list, e.g. [a, b]") }
        var items: [(Node, String)] = []
        for (index, item) in sequence.enumerated() {
            items.append((item, "\(key)[\(index)]"))
        }
        return items
    }

    func configuration(_ root: Node) throws(ConfigError) -> ProxyConfiguration {
        let top = try mapping(
            root, "",
            allowed: [
                "listen", "upstream", "upstream_timeout", "upstream_read_timeout", "upstream_max_connections", "upstream_max_waiting",
                "preserve_host", "client", "errors", "redis", "defaults", "routes", "invalidate", "tags", "admin", "memory",
            ])
        guard let listenNode = top["listen"] else { throw fail(root, "listen", "required (e.g. listen: 127.0.0.1:8080)") }
        guard let upstreamNode = top["upstream"] else { throw fail(root, "upstream", "required (e.g. upstream: http://127.0.0.1:7000)") }
        guard let redisNode = top["redis"] else { throw fail(root, "redis", "required (at least redis.url)") }

        let listen = try hostAndPort(listenNode, "listen")
        let upstream = try upstreamURL(upstreamNode, "upstream")
        let upstreamTimeout =
            try top["upstream_timeout"].map { node throws(ConfigError) in try duration(node, "upstream_timeout") } ?? .seconds(30)
        let upstreamReadTimeout =
            try top["upstream_read_timeout"].map { node throws(ConfigError) in try duration(node, "upstream_read_timeout") } ?? .seconds(60)
        let upstreamMaxConnections =
            try top["upstream_max_connections"].map { node throws(ConfigError) in
                try integer(node, "upstream_max_connections", range: 1...65536)
            } ?? 256
        let upstreamMaxWaiting =
            try top["upstream_max_waiting"].map { node throws(ConfigError) in try integer(node, "upstream_max_waiting", range: 0...1 << 20)
            }
            ?? 1024
        let preserveHost = try top["preserve_host"].map { node throws(ConfigError) in try bool(node, "preserve_host") } ?? true
        let client = try top["client"].map { node throws(ConfigError) in try clientSettings(node) } ?? ClientSettings()
        var errorDetail = false
        if let errorsNode = top["errors"] {
            let fields = try mapping(errorsNode, "errors", allowed: ["detail"])
            if let detail = fields["detail"] { errorDetail = try bool(detail, "errors.detail") }
        }
        let redis = try redisSettings(redisNode)
        let defaults = try top["defaults"].map { node throws(ConfigError) in try routeDefaults(node) } ?? RouteDefaults()
        var routes: [Route] = []
        if let routesNode = top["routes"] {
            for (node, key) in try list(routesNode, "routes") {
                routes.append(try route(node, key, defaults: defaults))
            }
        }
        let tags = try top["tags"].map { node throws(ConfigError) in try tagSettings(node) } ?? TagSettings()
        var rules: [InvalidationRule] = []
        if let rulesNode = top["invalidate"] {
            for (node, key) in try list(rulesNode, "invalidate") {
                rules.append(try invalidationRule(node, key, defaults: defaults))
            }
        }
        let admin = try top["admin"].map { node throws(ConfigError) in try adminSettings(node) } ?? AdminSettings()
        let memory = try top["memory"].map { node throws(ConfigError) in try memorySettings(node) } ?? MemorySettings()
        return ProxyConfiguration(
            listen: listen, upstream: upstream, upstreamTimeout: upstreamTimeout, upstreamReadTimeout: upstreamReadTimeout,
            upstreamMaxConnections: upstreamMaxConnections, upstreamMaxWaiting: upstreamMaxWaiting, preserveHost: preserveHost,
            client: client, errorDetail: errorDetail, redis: redis, defaults: defaults, routes: routes, invalidate: rules, tags: tags,
            admin: admin, memory: memory)
    }

    func memorySettings(_ node: Node) throws(ConfigError) -> MemorySettings {
        let fields = try mapping(node, "memory", allowed: ["max_bytes", "max_entry_bytes"])
        var settings = MemorySettings()
        if let max = fields["max_bytes"] { settings.maxBytes = try integer(max, "memory.max_bytes", range: 0...(1 << 40)) }
        if let max = fields["max_entry_bytes"] {
            settings.maxEntryBytes = try integer(max, "memory.max_entry_bytes", range: 1...(1 << 30))
        }
        return settings
    }

    func tagSettings(_ node: Node) throws(ConfigError) -> TagSettings {
        let fields = try mapping(node, "tags", allowed: ["response_header", "strip_response_header"])
        var settings = TagSettings()
        if let header = fields["response_header"] {
            let name = try string(header, "tags.response_header")
            if ["none", "off", "false", "no"].contains(name.lowercased()) {
                settings.responseHeader = nil
            } else {
                guard name.utf8.allSatisfy(HTTPRequestParser.isTokenByte) else {
                    throw fail(header, "tags.response_header", "\"\(name)\" is not a header name (or none)")
                }
                settings.responseHeader = name.lowercased()
            }
        }
        if let strip = fields["strip_response_header"] {
            settings.stripResponseHeader = try bool(strip, "tags.strip_response_header")
        }
        return settings
    }

    func adminSettings(_ node: Node) throws(ConfigError) -> AdminSettings {
        let fields = try mapping(node, "admin", allowed: ["listen", "token", "token_env", "purge_method"])
        var settings = AdminSettings()
        if let listen = fields["listen"] { settings.listen = try hostAndPort(listen, "admin.listen") }
        if fields["token"] != nil, fields["token_env"] != nil {
            throw fail(node, "admin.token", "give token or token_env, not both")
        }
        if let token = fields["token"] { settings.token = try adminToken(try string(token, "admin.token"), token, "admin.token") }
        if let variable = fields["token_env"] {
            let name = try string(variable, "admin.token_env")
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw fail(variable, "admin.token_env", "the environment variable \(name) is not set (or empty)")
            }
            settings.token = try adminToken(value, variable, "admin.token_env")
        }
        if let purge = fields["purge_method"] { settings.purgeMethod = try bool(purge, "admin.purge_method") }
        if let listen = settings.listen, settings.token == nil, !Self.isLoopback(listen.host) {
            throw fail(
                fields["listen"], "admin.listen",
                "\(listen) is not a loopback address: set admin.token (or admin.token_env) so the purge API is not open to the network")
        }
        if settings.purgeMethod, settings.token == nil {
            throw fail(fields["purge_method"], "admin.purge_method", "the PURGE method needs admin.token (or admin.token_env)")
        }
        return settings
    }

    func adminToken(_ token: String, _ node: Node, _ key: String) throws(ConfigError) -> String {
        guard token.utf8.count >= 16 else { throw fail(node, key, "the token must be at least 16 characters") }
        guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw fail(node, key, "the token must be printable ASCII without spaces")
        }
        return token
    }

    /// `localhost`, `::1` or a dotted IPv4 address in 127.0.0.0/8 (not a name like `127.example.com`).
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in part.count <= 3 && !part.isEmpty && part.allSatisfy(\.isASCII) && UInt8(part) != nil }
    }

    func tagTemplates(_ node: Node, _ key: String) throws(ConfigError) -> [TagTemplate] {
        var templates: [TagTemplate] = []
        for (item, itemKey) in try list(node, key) {
            let text = try string(item, itemKey)
            do {
                templates.append(try TagTemplate(text))
            } catch {
                throw fail(item, itemKey, "bad tag \"\(text)\": \(error)")
            }
        }
        return templates
    }

    func methodList(_ node: Node, _ key: String, allowed: Set<String>, why: String) throws(ConfigError) -> Set<String> {
        var methods: Set<String> = []
        for (item, itemKey) in try list(node, key) {
            let method = try string(item, itemKey).uppercased()
            guard Self.knownMethods.contains(method) else {
                throw fail(item, itemKey, "unknown method \"\(method)\" (expected \(allowed.sorted().joined(separator: ", ")))")
            }
            guard allowed.contains(method) else { throw fail(item, itemKey, why.replacingOccurrences(of: "%@", with: method)) }
            methods.insert(method)
        }
        guard !methods.isEmpty else { throw fail(node, key, "must list at least one method") }
        return methods
    }

    func pathPattern(_ node: Node, _ key: String) throws(ConfigError) -> PathPattern {
        let text = try string(node, key)
        do {
            return try PathPattern(text)
        } catch {
            throw fail(node, key, "bad path pattern \"\(text)\": \(error)")
        }
    }

    /// Checks that a placeholder can be filled from what a request on `path` supplies.
    func checkSource(
        _ source: TagTemplate.Source, _ template: TagTemplate, path: PathPattern, _ node: Node, _ key: String
    ) throws(ConfigError) {
        if case .path(let number) = source, !path.mayHaveSegment(number) {
            throw fail(
                node, key, "tag \"\(template)\": {path.\(number)} does not exist in \(path) (segments: 1 to \(path.namedSegmentCount))")
        }
    }

    func invalidationRule(_ node: Node, _ key: String, defaults: RouteDefaults) throws(ConfigError) -> InvalidationRule {
        let fields = try mapping(node, key, allowed: ["name", "path", "methods", "statuses", "purge", "soft", "max_body_bytes"])
        guard let pathNode = fields["path"] else { throw fail(node, "\(key).path", "required (e.g. path: /user/edit_user/)") }
        let path = try pathPattern(pathNode, "\(key).path")
        guard let purgeNode = fields["purge"] else {
            throw fail(node, "\(key).purge", "required: the tags to purge (e.g. [show_all_user, \"user:{body.nick_name}\"])")
        }
        let purge = try tagTemplates(purgeNode, "\(key).purge")
        if case .sequence(let items) = purgeNode {
            for (template, item) in zip(purge, items) {
                for source in template.sources {
                    if case .response = source {
                        throw fail(
                            item, "\(key).purge",
                            "tag \"\(template)\": {response.…} is not available here (the purge runs before the response is read); use the request's body, query or path"
                        )
                    }
                    try checkSource(source, template, path: path, item, "\(key).purge")
                }
            }
        }
        var methods: Set<String> = ["POST", "PUT", "PATCH", "DELETE"]
        if let methodsNode = fields["methods"] {
            methods = try methodList(
                methodsNode, "\(key).methods", allowed: ["POST", "PUT", "PATCH", "DELETE"],
                why: "%@ does not change anything: invalidation rules are for POST, PUT, PATCH and DELETE")
        }
        var statuses: Set<Int>? = nil
        if let statusesNode = fields["statuses"] {
            var set: Set<Int> = []
            for (item, itemKey) in try list(statusesNode, "\(key).statuses") { set.insert(try integer(item, itemKey, range: 100...599)) }
            statuses = set
        }
        return InvalidationRule(
            name: try fields["name"].map { node throws(ConfigError) in try string(node, "\(key).name") },
            path: path, methods: methods, statuses: statuses, purge: purge,
            soft: try fields["soft"].map { node throws(ConfigError) in try bool(node, "\(key).soft") } ?? false,
            maxBodyBytes: try fields["max_body_bytes"].map { node throws(ConfigError) in
                try integer(node, "\(key).max_body_bytes", range: 0...(1 << 30))
            } ?? defaults.maxBodyBytes)
    }

    func bodyKey(_ node: Node, _ key: String) throws(ConfigError) -> BodyKey {
        if case .scalar = node {
            switch try string(node, key) {
            case "raw": return .raw
            case "json": return .json(.all)
            case let other: throw fail(node, key, "expected raw or json (or a mapping with format, fields, ignore), got \"\(other)\"")
            }
        }
        let fields = try mapping(node, key, allowed: ["format", "fields", "ignore"])
        let format = try fields["format"].map { node throws(ConfigError) in try string(node, "\(key).format") } ?? "json"
        guard format == "json" else {
            throw fail(fields["format"], "\(key).format", "fields and ignore need format json, got \"\(format)\"")
        }
        func names(_ node: Node, _ key: String) throws(ConfigError) -> Set<String> {
            var names: Set<String> = []
            for (item, itemKey) in try list(node, key) { names.insert(try string(item, itemKey)) }
            guard !names.isEmpty else { throw fail(node, key, "must list at least one field") }
            return names
        }
        switch (fields["fields"], fields["ignore"]) {
        case (.some, .some): throw fail(node, "\(key).fields", "give fields or ignore, not both")
        case (.some(let only), nil): return .json(.only(try names(only, "\(key).fields")))
        case (nil, .some(let ignore)): return .json(.ignoring(try names(ignore, "\(key).ignore")))
        case (nil, nil): return .json(.all)
        }
    }

    func clientSettings(_ node: Node) throws(ConfigError) -> ClientSettings {
        let fields = try mapping(
            node, "client",
            allowed: [
                "header_timeout", "body_timeout", "keepalive_timeout", "max_request_line_bytes", "max_header_bytes", "max_headers",
                "max_pipelined_requests",
            ])
        var settings = ClientSettings()
        if let node = fields["header_timeout"] { settings.headerTimeout = try duration(node, "client.header_timeout") }
        if let node = fields["body_timeout"] { settings.bodyTimeout = try duration(node, "client.body_timeout") }
        if let node = fields["keepalive_timeout"] { settings.keepAliveTimeout = try duration(node, "client.keepalive_timeout") }
        if let node = fields["max_request_line_bytes"] {
            settings.maxRequestLineBytes = try integer(node, "client.max_request_line_bytes", range: 256...(1 << 20))
        }
        if let node = fields["max_header_bytes"] {
            settings.maxHeaderBytes = try integer(node, "client.max_header_bytes", range: 1024...(1 << 22))
        }
        if let node = fields["max_headers"] { settings.maxHeaderCount = try integer(node, "client.max_headers", range: 1...10_000) }
        if let node = fields["max_pipelined_requests"] {
            settings.maxPipelinedRequests = try integer(node, "client.max_pipelined_requests", range: 0...1024)
        }
        return settings
    }

    func hostAndPort(_ node: Node, _ key: String) throws(ConfigError) -> HostAndPort {
        let text = try string(node, key)
        let host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") {
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            throw fail(node, key, "expected host:port (e.g. 127.0.0.1:8080), got \"\(text)\"")
        }
        guard !host.isEmpty else { throw fail(node, key, "the host is missing in \"\(text)\"") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw fail(node, key, "port \"\(portText)\" is not a number from 0 to 65535")
        }
        return HostAndPort(host: String(host), port: port)
    }

    func upstreamURL(_ node: Node, _ key: String) throws(ConfigError) -> UpstreamURL {
        let text = try string(node, key)
        if text.hasPrefix("https://") {
            throw fail(node, key, "bad URL \"\(text)\": https upstreams are not supported yet; use http://")
        }
        guard text.hasPrefix("http://") else { throw fail(node, key, "bad URL \"\(text)\": expected http://host[:port]") }
        var rest = Substring(text.dropFirst("http://".count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/"), !rest.contains("?"), !rest.contains("@") else {
            throw fail(node, key, "bad URL \"\(text)\": only http://host[:port] is supported (no path, query or user)")
        }
        if rest.contains(":") && !(rest.hasPrefix("[") && rest.hasSuffix("]")) {
            let address = try hostAndPort(.scalar(.init(String(rest), .implicit, .plain, node.mark)), key)
            guard address.port > 0 else { throw fail(node, key, "bad URL \"\(text)\": port must be from 1 to 65535") }
            return UpstreamURL(host: address.host, port: address.port)
        }
        let host = rest.hasPrefix("[") ? String(rest.dropFirst().dropLast()) : String(rest)
        guard !host.isEmpty else { throw fail(node, key, "bad URL \"\(text)\": the host is missing") }
        return UpstreamURL(host: host, port: 80)
    }

    func redisSettings(_ node: Node) throws(ConfigError) -> RedisSettings {
        let fields = try mapping(node, "redis", allowed: ["url", "key_prefix", "timeout", "purge_timeout"])
        guard let urlNode = fields["url"] else { throw fail(node, "redis.url", "required (e.g. redis://127.0.0.1:6379/0)") }
        let urlText = try string(urlNode, "redis.url")
        let url: RedisURL
        do {
            url = try RedisURL(parsing: urlText)
        } catch {
            throw fail(urlNode, "redis.url", "bad URL: \(error.reason) (expected redis://[[user]:password@]host:port[/db])")
        }
        var settings = RedisSettings(url: url)
        if let prefix = fields["key_prefix"] { settings.keyPrefix = try string(prefix, "redis.key_prefix") }
        if let timeout = fields["timeout"] { settings.timeout = try duration(timeout, "redis.timeout") }
        if let timeout = fields["purge_timeout"] { settings.purgeTimeout = try duration(timeout, "redis.purge_timeout") }
        return settings
    }

    func routeDefaults(_ node: Node) throws(ConfigError) -> RouteDefaults {
        let fields = try mapping(
            node, "defaults",
            allowed: [
                "ttl", "max_body_bytes", "statuses", "bypass_headers", "stale_while_revalidate", "stale_if_error",
                "stale_if_error_statuses", "coalesce_timeout", "coalesce_across_instances",
            ])
        var defaults = RouteDefaults()
        if let node = fields["coalesce_across_instances"] {
            defaults.coalesceAcrossInstances = try bool(node, "defaults.coalesce_across_instances")
        }
        defaults.stale = try staleSettings(fields, "defaults", inheriting: StaleSettings())
        if let node = fields["coalesce_timeout"] {
            defaults.coalesceTimeout = try duration(node, "defaults.coalesce_timeout", allowZero: true)
        }
        if let ttl = fields["ttl"] { defaults.ttl = try duration(ttl, "defaults.ttl") }
        if let max = fields["max_body_bytes"] { defaults.maxBodyBytes = try integer(max, "defaults.max_body_bytes", range: 0...(1 << 30)) }
        if let statuses = fields["statuses"] { defaults.statuses = try statusList(statuses, "defaults.statuses") }
        if let headers = fields["bypass_headers"] { defaults.bypassHeaders = try headerNames(headers, "defaults.bypass_headers") }
        return defaults
    }

    /// `stale_while_revalidate`, `stale_if_error` and `stale_if_error_statuses` of a route or the defaults.
    func staleSettings(_ fields: [String: Node], _ key: String, inheriting base: StaleSettings) throws(ConfigError) -> StaleSettings {
        var stale = base
        if let node = fields["stale_while_revalidate"] {
            stale.whileRevalidate = try duration(node, "\(key).stale_while_revalidate", allowZero: true)
        }
        if let node = fields["stale_if_error"] { stale.ifError = try duration(node, "\(key).stale_if_error", allowZero: true) }
        if let node = fields["stale_if_error_statuses"] {
            var statuses: Set<Int> = []
            for (item, itemKey) in try list(node, "\(key).stale_if_error_statuses") {
                statuses.insert(try integer(item, itemKey, range: 400...599))
            }
            stale.ifErrorStatuses = statuses
        }
        return stale
    }

    func headerNames(_ node: Node, _ key: String) throws(ConfigError) -> Set<String> {
        var names: Set<String> = []
        for (item, itemKey) in try list(node, key) {
            let name = try string(item, itemKey)
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPRequestParser.isTokenByte) else {
                throw fail(item, itemKey, "\"\(name)\" is not a header name")
            }
            names.insert(name.lowercased())
        }
        return names
    }

    func statusList(_ node: Node, _ key: String) throws(ConfigError) -> Set<Int> {
        var statuses: Set<Int> = []
        for (item, itemKey) in try list(node, key) {
            let status = try integer(item, itemKey, range: 100...599)
            guard !RouteDefaults.isNeverStored(status) else {
                throw fail(
                    item, itemKey,
                    "status \(status) is never stored: 400, 413, 414, 431 and 5xx answers to one client must not be served to others")
            }
            statuses.insert(status)
        }
        return statuses
    }

    func route(_ node: Node, _ key: String, defaults: RouteDefaults) throws(ConfigError) -> Route {
        let fields = try mapping(
            node, key,
            allowed: [
                "name", "path", "methods", "ttl", "query", "vary", "statuses", "max_body_bytes", "bypass_headers", "tags", "body_key",
                "stale_while_revalidate", "stale_if_error", "stale_if_error_statuses", "coalesce_timeout",
                "coalesce_across_instances",
            ])
        guard let pathNode = fields["path"] else { throw fail(node, "\(key).path", "required (e.g. path: /users/*)") }
        let pattern = try pathPattern(pathNode, "\(key).path")
        var methods: Set<String> = ["GET", "HEAD"]
        if let methodsNode = fields["methods"] {
            methods = try methodList(
                methodsNode, "\(key).methods", allowed: Self.cacheableMethods, why: "method %@ cannot be cached (only GET, HEAD and POST)")
        }
        var query = QuerySelection.all
        if let queryNode = fields["query"] {
            if case .scalar = queryNode, let word = try? string(queryNode, "\(key).query"), word == "all" {
                query = .all
            } else {
                var names: Set<String> = []
                for (item, itemKey) in try list(queryNode, "\(key).query") { names.insert(try string(item, itemKey)) }
                query = .only(names)
            }
        }
        var vary: [String] = []
        if let varyNode = fields["vary"] {
            for (item, itemKey) in try list(varyNode, "\(key).vary") {
                let name = try string(item, itemKey)
                guard !name.isEmpty, name.utf8.allSatisfy(HTTPRequestParser.isTokenByte) else {
                    throw fail(item, itemKey, "\"\(name)\" is not a header name")
                }
                vary.append(name.lowercased())
            }
        }
        let routeBodyKey: BodyKey =
            try fields["body_key"].map { node throws(ConfigError) in try self.bodyKey(node, "\(key).body_key") } ?? .raw
        var tags: [TagTemplate] = []
        if let tagsNode = fields["tags"], case .sequence(let items) = tagsNode {
            tags = try tagTemplates(tagsNode, "\(key).tags")
            for (template, item) in zip(tags, items) {
                for source in template.sources {
                    try checkSource(source, template, path: pattern, item, "\(key).tags")
                    try checkKeyed(source, template, query: query, bodyKey: routeBodyKey, item, "\(key).tags")
                }
            }
        } else if let tagsNode = fields["tags"] {
            throw fail(tagsNode, "\(key).tags", "expected a list, e.g. [\"user:{body.nick_name}\"]")
        }
        return Route(
            name: try fields["name"].map { node throws(ConfigError) in try string(node, "\(key).name") },
            path: pattern,
            methods: methods,
            ttl: try fields["ttl"].map { node throws(ConfigError) in try duration(node, "\(key).ttl") },
            query: query,
            vary: vary,
            statuses: try fields["statuses"].map { node throws(ConfigError) in try statusList(node, "\(key).statuses") },
            maxBodyBytes: try fields["max_body_bytes"].map { node throws(ConfigError) in
                try integer(node, "\(key).max_body_bytes", range: 0...(1 << 30))
            },
            bypassHeaders: try fields["bypass_headers"].map { node throws(ConfigError) in try headerNames(node, "\(key).bypass_headers") },
            tags: tags,
            bodyKey: routeBodyKey,
            stale: try staleSettings(fields, key, inheriting: defaults.stale),
            coalesceTimeout: try fields["coalesce_timeout"].map { node throws(ConfigError) in
                try duration(node, "\(key).coalesce_timeout", allowZero: true)
            },
            coalesceAcrossInstances: try fields["coalesce_across_instances"].map { node throws(ConfigError) in
                try bool(node, "\(key).coalesce_across_instances")
            },
            defaults: defaults)
    }

    /// A route's tag may only use request values that are part of the key: two requests that
    /// share an entry must give it the same tags.
    func checkKeyed(
        _ source: TagTemplate.Source, _ template: TagTemplate, query: QuerySelection, bodyKey: BodyKey, _ node: Node, _ key: String
    ) throws(ConfigError) {
        switch source {
        case .query(let name):
            if case .only(let names) = query, !names.contains(name) {
                throw fail(
                    node, key, "tag \"\(template)\": query parameter \"\(name)\" is not in this route's key (query: \(names.sorted()))")
            }
        case .body(let fields):
            guard case .json(let selection) = bodyKey, let field = fields.first else { return }
            switch selection {
            case .all: return
            case .only(let names) where !names.contains(field):
                throw fail(
                    node, key,
                    "tag \"\(template)\": body field \"\(field)\" is not in this route's key (body_key fields: \(names.sorted()))")
            case .ignoring(let names) where names.contains(field):
                throw fail(node, key, "tag \"\(template)\": body field \"\(field)\" is ignored by this route's body_key")
            default: return
            }
        case .path, .response:
            return
        }
    }

    /// The allowed key closest to a misspelt one, if any is close.
    static func closest(_ name: String, in allowed: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, ca) in a.enumerated() {
                var current = [i + 1]
                for (j, cb) in b.enumerated() {
                    current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
        let scored = allowed.map { ($0, distance(Array(name), Array($0))) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= max(2, name.count / 3) else { return nil }
        return best
    }
}
