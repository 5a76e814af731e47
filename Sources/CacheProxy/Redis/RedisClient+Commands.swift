import NIOCore

// Typed helpers for the commands the cache uses. Each has a future-returning form for callers on
// an event loop (no thread hop when `eventLoop` is the caller's own) and an async form.

extension RedisClient {
    /// `GET key`: the value's bytes, or nil when the key does not exist.
    public func get(_ key: String, on eventLoop: EventLoop? = nil, timeout: TimeAmount? = nil) -> EventLoopFuture<ByteBuffer?> {
        send(RedisCommand("GET", [.string(key)]), on: eventLoop, timeout: timeout).flatMapThrowing { reply in
            switch reply {
            case .bulkString(let bytes): return bytes
            case .null: return nil
            default: throw RedisClientError.unexpectedReply(to: "GET", reply)
            }
        }
    }

    /// `SET key value [PX ms] [NX]`: true when the value was stored, false when `NX` kept an
    /// existing key.
    ///
    /// - Parameters:
    ///   - expiration: the key's time to live (sent as `PX` milliseconds, at least 1). Default: none.
    ///   - onlyIfAbsent: send `NX`. Default false.
    public func set(
        _ key: String,
        to value: ByteBuffer,
        expiration: TimeAmount? = nil,
        onlyIfAbsent: Bool = false,
        on eventLoop: EventLoop? = nil,
        timeout: TimeAmount? = nil
    ) -> EventLoopFuture<Bool> {
        var arguments: [RedisArgument] = [.string(key), .bytes(value)]
        if let expiration {
            arguments += ["PX", .integer(max(1, expiration.nanoseconds / 1_000_000))]
        }
        if onlyIfAbsent {
            arguments.append("NX")
        }
        return send(RedisCommand("SET", arguments), on: eventLoop, timeout: timeout).flatMapThrowing { reply in
            switch reply {
            case .simpleString: return true
            case .null: return false
            default: throw RedisClientError.unexpectedReply(to: "SET", reply)
            }
        }
    }

    /// `DEL key…`: how many of the keys existed.
    public func delete(_ keys: [String], on eventLoop: EventLoop? = nil, timeout: TimeAmount? = nil) -> EventLoopFuture<Int> {
        send(RedisCommand("DEL", keys.map { .string($0) }), on: eventLoop, timeout: timeout).flatMapThrowing { reply in
            guard case .integer(let count) = reply else { throw RedisClientError.unexpectedReply(to: "DEL", reply) }
            return Int(count)
        }
    }

    /// `PEXPIRE key ms` (`EXPIRE` semantics at millisecond precision): false when the key does not exist.
    public func expire(_ key: String, after ttl: TimeAmount, on eventLoop: EventLoop? = nil, timeout: TimeAmount? = nil) -> EventLoopFuture<
        Bool
    > {
        let milliseconds = max(1, ttl.nanoseconds / 1_000_000)
        return send(RedisCommand("PEXPIRE", [.string(key), .integer(milliseconds)]), on: eventLoop, timeout: timeout).flatMapThrowing {
            reply in
            guard case .integer(let set) = reply else { throw RedisClientError.unexpectedReply(to: "PEXPIRE", reply) }
            return set == 1
        }
    }

    /// `PING`: the server's answer, `PONG`.
    public func ping(on eventLoop: EventLoop? = nil, timeout: TimeAmount? = nil) -> EventLoopFuture<String> {
        send(RedisCommand("PING"), on: eventLoop, timeout: timeout).flatMapThrowing { reply in
            guard case .simpleString(let text) = reply else { throw RedisClientError.unexpectedReply(to: "PING", reply) }
            return text
        }
    }

    // MARK: async forms

    /// `GET key` from async code; see ``get(_:on:timeout:)``.
    public func get(_ key: String, timeout: TimeAmount? = nil) async throws -> ByteBuffer? {
        try await get(key, on: nil, timeout: timeout).get()
    }

    /// `SET` from async code; see ``set(_:to:expiration:onlyIfAbsent:on:timeout:)``.
    @discardableResult
    public func set(
        _ key: String, to value: ByteBuffer, expiration: TimeAmount? = nil, onlyIfAbsent: Bool = false, timeout: TimeAmount? = nil
    ) async throws -> Bool {
        try await set(key, to: value, expiration: expiration, onlyIfAbsent: onlyIfAbsent, on: nil, timeout: timeout).get()
    }

    /// `DEL` from async code; see ``delete(_:on:timeout:)``.
    @discardableResult
    public func delete(_ keys: [String], timeout: TimeAmount? = nil) async throws -> Int {
        try await delete(keys, on: nil, timeout: timeout).get()
    }

    /// `PEXPIRE` from async code; see ``expire(_:after:on:timeout:)``.
    @discardableResult
    public func expire(_ key: String, after ttl: TimeAmount, timeout: TimeAmount? = nil) async throws -> Bool {
        try await expire(key, after: ttl, on: nil, timeout: timeout).get()
    }

    /// `PING` from async code.
    public func ping(timeout: TimeAmount? = nil) async throws -> String {
        try await ping(on: nil, timeout: timeout).get()
    }
}

extension RedisClientError {
    static func unexpectedReply(to command: String, _ reply: RedisValue) -> RedisClientError {
        RedisClientError.protocolError.withDetail("unexpected reply to \(command): \(reply)")
    }
}
