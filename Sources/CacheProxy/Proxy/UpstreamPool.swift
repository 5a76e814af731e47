import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to the upstream for one event loop. Requests on a loop use that
/// loop's pool, so a forwarded request never crosses threads.
final class UpstreamPool: Sendable {
    let eventLoop: EventLoop
    private let upstream: UpstreamURL
    private let connectTimeout: TimeAmount
    /// Most idle connections kept. Default 128.
    private let maxIdle: Int
    /// Idle connections are closed after this long. Default 4 s, below the keep-alive
    /// timeout of common servers (5 s), so the pool rarely picks one the server is closing.
    private let idleTimeout: TimeAmount
    private let idle: NIOLoopBoundBox<[UpstreamConnection]>

    init(upstream: UpstreamURL, eventLoop: EventLoop, connectTimeout: TimeAmount, maxIdle: Int = 128, idleTimeout: TimeAmount = .seconds(4))
    {
        self.eventLoop = eventLoop
        self.upstream = upstream
        self.connectTimeout = connectTimeout
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
        self.idle = .makeBoxSendingValue([], eventLoop: eventLoop)
    }

    /// Calls `completion` with an idle connection (`reused` true) or a new one, or the connect
    /// error. Must be called on `eventLoop`; `completion` runs there, possibly before this returns.
    func acquire(_ completion: @escaping (Result<(connection: UpstreamConnection, reused: Bool), UpstreamError>) -> Void) {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.value.popLast() {
            if connection.channel.isActive {
                connection.idleTimer?.cancel()
                connection.idleTimer = nil
                completion(.success((connection, true)))
                return
            }
        }
        connect(completion)
    }

    /// Returns a connection after a complete exchange; closes it if it cannot be reused.
    func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        guard connection.reusable, connection.channel.isActive, idle.value.count < maxIdle else {
            connection.close()
            return
        }
        connection.delegate = nil
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) {
            connection.close()
        }
        idle.value.append(connection)
    }

    /// Closes every idle connection.
    func closeIdle() -> EventLoopFuture<Void> {
        eventLoop.submit {
            let connections = self.idle.value
            self.idle.value = []
            for connection in connections { connection.close() }
        }
    }

    private func connect(_ completion: @escaping (Result<(connection: UpstreamConnection, reused: Bool), UpstreamError>) -> Void) {
        let upstream = self.upstream
        let timeout = connectTimeout
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(channel: channel))
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                        channel.close(promise: nil)
                        completion(.failure(UpstreamError(code: .connectFailed, detail: "upstream connection closed at once")))
                        return
                    }
                    connection.onClose = { [weak self] in self?.forget(connection) }
                    completion(.success((connection, false)))
                case .failure(let error):
                    if let channelError = error as? ChannelError, case .connectTimeout = channelError {
                        completion(
                            .failure(
                                UpstreamError(
                                    code: .connectTimeout, detail: "connecting to the upstream \(upstream) timed out after \(timeout)")))
                    } else {
                        completion(
                            .failure(UpstreamError(code: .connectFailed, detail: "cannot connect to the upstream \(upstream): \(error)")))
                    }
                }
            }
    }

    private func forget(_ connection: UpstreamConnection) {
        idle.value.removeAll { $0 === connection }
    }
}
