/// Where a Redis server is and how to log in to it, parsed from
/// `redis://[[user]:password@]host:port[/db]`.
///
/// - `host` is a name, an IPv4 address or a bracketed IPv6 address (`[::1]`).
/// - `port` defaults to 6379 when omitted.
/// - `user` and `password` are percent-decoded. With a password, the connection sends
///   `AUTH [user] password` before anything else.
/// - `db` defaults to 0; any other value makes the connection send `SELECT db`.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// The host name or address, without brackets.
    public var host: String
    /// The TCP port. Default 6379.
    public var port: Int
    /// The ACL user name, or nil for the default user.
    public var username: String?
    /// The password, or nil when the server needs none.
    public var password: String?
    /// The logical database selected after connecting. Default 0.
    public var database: Int

    /// Creates an endpoint from its parts.
    public init(host: String, port: Int = 6379, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL, throwing a ``RedisURLError`` that says what is wrong.
    public init(parsing string: String) throws(RedisURLError) {
        let scheme = "redis://"
        guard string.hasPrefix(scheme) else {
            throw RedisURLError(url: string, reason: "must start with \"redis://\"")
        }
        var rest = Substring(string.dropFirst(scheme.count))

        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0 else {
                    throw RedisURLError(url: string, reason: "database \"\(dbText)\" is not a non-negative integer")
                }
                database = db
            }
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                let user = userinfo[..<colon]
                let pass = userinfo[userinfo.index(after: colon)...]
                username = user.isEmpty ? nil : try Self.percentDecoded(user, in: string)
                password = try Self.percentDecoded(pass, in: string)
            } else if !userinfo.isEmpty {
                // `redis://secret@host` is the common shorthand for a password alone.
                password = try Self.percentDecoded(userinfo, in: string)
            }
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw RedisURLError(url: string, reason: "IPv6 host is missing its closing \"]\"")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw RedisURLError(url: string, reason: "unexpected \"\(after)\" after the host")
                }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else {
            throw RedisURLError(url: string, reason: "the host is missing")
        }
        guard !host.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) else {
            throw RedisURLError(url: string, reason: "host \"\(host)\" is not a valid host name")
        }
        var port = 6379
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw RedisURLError(url: string, reason: "port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = value
        }
        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// The URL with the password masked, safe to log.
    public var description: String {
        var userinfo = ""
        if password != nil || username != nil {
            userinfo = "\(username ?? ""):\(password == nil ? "" : "***")@"
        }
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "redis://\(userinfo)\(hostText):\(port)/\(database)"
    }

    private static func percentDecoded(_ text: Substring, in url: String) throws(RedisURLError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.next().flatMap(UInt8.hexDigitValue), let low = utf8.next().flatMap(UInt8.hexDigitValue) else {
                throw RedisURLError(url: url, reason: "bad percent-encoding in the user information")
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A `redis://` URL that could not be parsed.
public struct RedisURLError: Error, Hashable, CustomStringConvertible {
    /// The URL as given, with any password masked.
    public let url: String
    /// What is wrong with it.
    public let reason: String

    init(url: String, reason: String) {
        self.url = RedisURLError.masked(url)
        self.reason = reason
    }

    public var description: String {
        "invalid Redis URL \"\(url)\": \(reason) (expected redis://[[user]:password@]host:port[/db])"
    }

    private static func masked(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let schemeEnd = url.firstRange(of: "://")?.upperBound, schemeEnd < at else {
            return url
        }
        let userinfo = url[schemeEnd..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return url[..<schemeEnd] + "***" + url[at...] }
        return url[...colon] + "***" + url[at...]
    }
}
