import NIOCore
import NIOPosix

/// Opening the long-lived connections that sit outside the pipelined client (the fill
/// subscriber, the invalidation listener): connect, let the owner claim the channel (or refuse
/// it after a shutdown), write the handshake, and report the close or the connect failure so
/// the owner can reconnect with backoff.
enum DedicatedRedisConnection {
    /// `AUTH [user] password` when the URL has a password; nothing otherwise.
    static func authentication(_ url: RedisURL) -> [RedisCommand] {
        guard let password = url.password else { return [] }
        return [RedisCommand("AUTH", (url.username.map { [.string($0)] } ?? []) + [.string(password)])]
    }

    /// - Parameters:
    ///   - initialize: adds the connection's handlers (on its event loop).
    ///   - claim: the owner takes the connected channel; false (it shut down meanwhile) closes it.
    ///   - closed: the claimed connection closed, or the connect failed (with its error).
    static func open(
        url: RedisURL, eventLoop: EventLoop, connectTimeout: TimeAmount, handshake: [RedisCommand],
        initialize: @escaping @Sendable (Channel) throws -> Void, claim: @escaping @Sendable (Channel) -> Bool,
        closed: @escaping @Sendable ((any Error)?) -> Void
    ) {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try initialize(channel) } }
            .connect(host: url.host, port: url.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard claim(channel) else {
                        channel.close(promise: nil)
                        return
                    }
                    var buffer = channel.allocator.buffer(capacity: 128)
                    for command in handshake { buffer.writeImmutableBuffer(command.encoded) }
                    channel.writeAndFlush(buffer, promise: nil)
                    channel.closeFuture.whenComplete { _ in closed(nil) }
                case .failure(let error):
                    closed(error)
                }
            }
    }
}
