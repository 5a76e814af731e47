import NIOCore

// Typed helpers for the commands the cache uses. Each has a future-returning form for callers on
// an event loop (`on:` their own loop: no thread hop) and an async form.

extension RedisClient {
    /// `GET key`: the value's bytes, or nil when the key does not exist.
    public func get(_ key: String, on eventLoop: EventLoop, timeout: TimeAmount? = nil) -> EventLoopFuture<ByteBuffer?> {
        run(Self.getCommand(key), preferring: eventLoop, timeout: timeout, Self.getReply)
    }

    /// `GET` from async code; see ``get(_:on:timeout:)``.
    public func get(_ key: String, timeout: TimeAmount? = nil) async throws -> ByteBuffer? {
        try await run(Self.getCommand(key), preferring: nil, timeout: timeout, Self.getReply).get()
    }

    /// `SET key value [PX ms] [NX]`: true when the value was stored, false when `NX` kept an
    /// existing key.
    ///
    /// - Parameters:
    ///   - expiration: the key's time to live (sent as `PX` milliseconds, at least 1). Default: none.
    ///   - onlyIfAbsent: send `NX`. Default false.
    public func set(
        _ key: String, to value: ByteBuffer, expiration: TimeAmount? = nil, onlyIfAbsent: Bool = false, on eventLoop: EventLoop,
        timeout: TimeAmount? = nil
    ) -> EventLoopFuture<Bool> {
        run(Self.setCommand(key, value, expiration, onlyIfAbsent), preferring: eventLoop, timeout: timeout, Self.setReply)
    }

    /// `SET` from async code; see ``set(_:to:expiration:onlyIfAbsent:on:timeout:)``.
    @discardableResult
    public func set(
        _ key: String, to value: ByteBuffer, expiration: TimeAmount? = nil, onlyIfAbsent: Bool = false, timeout: TimeAmount? = nil
    ) async throws -> Bool {
        try await run(Self.setCommand(key, value, expiration, onlyIfAbsent), preferring: nil, timeout: timeout, Self.setReply).get()
    }

    /// `DEL key…`: how many of the keys existed.
    public func delete(_ keys: [String], on eventLoop: EventLoop, timeout: TimeAmount? = nil) -> EventLoopFuture<Int> {
        run(RedisCommand("DEL", keys.map { .string($0) }), preferring: eventLoop, timeout: timeout, Self.integerReply("DEL"))
    }

    /// `DEL` from async code; see ``delete(_:on:timeout:)``.
    @discardableResult
    public func delete(_ keys: [String], timeout: TimeAmount? = nil) async throws -> Int {
        try await run(RedisCommand("DEL", keys.map { .string($0) }), preferring: nil, timeout: timeout, Self.integerReply("DEL")).get()
    }

    /// `PEXPIRE key ms`: false when the key does not exist.
    public func expire(_ key: String, after ttl: TimeAmount, on eventLoop: EventLoop, timeout: TimeAmount? = nil) -> EventLoopFuture<Bool> {
        run(Self.expireCommand(key, ttl), preferring: eventLoop, timeout: timeout, Self.integerReply("PEXPIRE")).map { $0 == 1 }
    }

    /// `PEXPIRE` from async code; see ``expire(_:after:on:timeout:)``.
    @discardableResult
    public func expire(_ key: String, after ttl: TimeAmount, timeout: TimeAmount? = nil) async throws -> Bool {
        try await run(Self.expireCommand(key, ttl), preferring: nil, timeout: timeout, Self.integerReply("PEXPIRE")).get() == 1
    }

    /// `PING`: the server's answer, `PONG`.
    public func ping(on eventLoop: EventLoop, timeout: TimeAmount? = nil) -> EventLoopFuture<String> {
        run(RedisCommand("PING"), preferring: eventLoop, timeout: timeout, Self.pingReply)
    }

    /// `PING` from async code.
    public func ping(timeout: TimeAmount? = nil) async throws -> String {
        try await run(RedisCommand("PING"), preferring: nil, timeout: timeout, Self.pingReply).get()
    }

    // MARK: Commands and replies

    private func run<T: Sendable>(
        _ command: RedisCommand, preferring eventLoop: EventLoop?, timeout: TimeAmount?,
        _ convert: @escaping @Sendable (RedisValue) throws -> T
    ) -> EventLoopFuture<T> {
        send(command, preferring: eventLoop, timeout: timeout).flatMapThrowing(convert)
    }

    private static func getCommand(_ key: String) -> RedisCommand { RedisCommand("GET", [.string(key)]) }

    @Sendable private static func getReply(_ reply: RedisValue) throws -> ByteBuffer? {
        switch reply {
        case .bulkString(let bytes): return bytes
        case .null: return nil
        default: throw RedisClientError.unexpectedReply(to: "GET", reply)
        }
    }

    private static func setCommand(_ key: String, _ value: ByteBuffer, _ expiration: TimeAmount?, _ onlyIfAbsent: Bool) -> RedisCommand {
        var arguments: [RedisArgument] = [.string(key), .bytes(value)]
        if let expiration {
            arguments += ["PX", .integer(max(1, expiration.nanoseconds / 1_000_000))]
        }
        if onlyIfAbsent {
            arguments.append("NX")
        }
        return RedisCommand("SET", arguments)
    }

    @Sendable private static func setReply(_ reply: RedisValue) throws -> Bool {
        switch reply {
        case .simpleString: return true
        case .null: return false
        default: throw RedisClientError.unexpectedReply(to: "SET", reply)
        }
    }

    private static func expireCommand(_ key: String, _ ttl: TimeAmount) -> RedisCommand {
        RedisCommand("PEXPIRE", [.string(key), .integer(max(1, ttl.nanoseconds / 1_000_000))])
    }

    private static func integerReply(_ command: String) -> @Sendable (RedisValue) throws -> Int {
        { reply in
            guard case .integer(let value) = reply else { throw RedisClientError.unexpectedReply(to: command, reply) }
            return Int(value)
        }
    }

    @Sendable private static func pingReply(_ reply: RedisValue) throws -> String {
        guard case .simpleString(let text) = reply else { throw RedisClientError.unexpectedReply(to: "PING", reply) }
        return text
    }
}

extension RedisClientError {
    static func unexpectedReply(to command: String, _ reply: RedisValue) -> RedisClientError {
        RedisClientError.protocolError.withDetail("unexpected reply to \(command): \(reply)")
    }
}
