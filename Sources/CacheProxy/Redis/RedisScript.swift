import Crypto
import NIOCore

/// A Lua script run with `EVALSHA`, falling back to `EVAL` (which also loads it) when the
/// server answers `NOSCRIPT` (a restart, `SCRIPT FLUSH`, a failover).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// Hex SHA-1 of the source, as Redis names scripts.
    public let sha1: String

    /// Creates a script from its source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).hexString
    }
}

extension RedisClient {
    /// Runs `script` with `keys` and `arguments`; the reply is the script's return value.
    public func run(
        _ script: RedisScript, keys: [RedisArgument] = [], arguments: [RedisArgument] = [], on eventLoop: EventLoop,
        timeout: TimeAmount? = nil
    ) -> EventLoopFuture<RedisValue> {
        let tail: [RedisArgument] = [.integer(keys.count)] + keys + arguments
        return send(RedisCommand("EVALSHA", [.string(script.sha1)] + tail), preferring: eventLoop, timeout: timeout)
            .flatMapError { error in
                guard let reply = error as? RedisServerError, reply.prefix == "NOSCRIPT" else {
                    return eventLoop.makeFailedFuture(error)
                }
                return self.send(RedisCommand("EVAL", [.string(script.source)] + tail), preferring: eventLoop, timeout: timeout)
            }
    }
}
