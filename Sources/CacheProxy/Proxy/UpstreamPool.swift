import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to the upstream for one event loop, at most `maxConnections` of them.
/// Requests on a loop use that loop's pool, so a forwarded request never crosses threads. When
/// every connection is busy, requests wait in a FIFO of at most `maxWaiting`; past that they
/// fail at once with ``UpstreamError/Code/poolExhausted`` (the client gets 503).
final class UpstreamPool: Sendable {
    typealias Completion = (Result<(connection: UpstreamConnection, reused: Bool), UpstreamError>) -> Void

    /// Identifies a request waiting for a connection, so it can stop waiting.
    struct WaiterID: Hashable {
        fileprivate let value: Int
    }

    private struct State {
        var idle: [UpstreamConnection] = []
        /// Connections open or being opened.
        var open = 0
        var waiters = CircularBuffer<(id: WaiterID, completion: Completion)>()
        var nextWaiter = 0
    }

    let eventLoop: EventLoop
    private let upstream: UpstreamURL
    private let connectTimeout: TimeAmount
    /// Most connections, idle or busy. Default 256.
    let maxConnections: Int
    /// Most requests waiting for a connection. Default 1024.
    let maxWaiting: Int
    /// Most idle connections kept. Default 128.
    private let maxIdle: Int
    /// Idle connections are closed after this long. Default 4 s, below the keep-alive
    /// timeout of common servers (5 s), so the pool rarely picks one the server is closing.
    private let idleTimeout: TimeAmount
    private let state: NIOLoopBoundBox<State>

    init(
        upstream: UpstreamURL, eventLoop: EventLoop, connectTimeout: TimeAmount, maxConnections: Int = 256, maxWaiting: Int = 1024,
        maxIdle: Int = 128, idleTimeout: TimeAmount = .seconds(4)
    ) {
        self.eventLoop = eventLoop
        self.upstream = upstream
        self.connectTimeout = connectTimeout
        self.maxConnections = maxConnections
        self.maxWaiting = maxWaiting
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
        self.state = .makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Calls `completion` with an idle connection (`reused` true) or a new one, or an error. Must
    /// be called on `eventLoop`; `completion` runs there, possibly before this returns. Returns
    /// the waiter's ID when the request has to wait (see ``cancel(_:)``).
    @discardableResult
    func acquire(_ completion: @escaping Completion) -> WaiterID? {
        eventLoop.preconditionInEventLoop()
        while let connection = state.value.idle.popLast() {
            if connection.channel.isActive {
                connection.idleTimer?.cancel()
                connection.idleTimer = nil
                completion(.success((connection, true)))
                return nil
            }
        }
        if state.value.open < maxConnections {
            connect(completion)
            return nil
        }
        guard state.value.waiters.count < maxWaiting else {
            completion(
                .failure(
                    UpstreamError(
                        code: .poolExhausted,
                        detail: "all \(maxConnections) upstream connections of this loop are busy and \(maxWaiting) requests wait")))
            return nil
        }
        state.value.nextWaiter += 1
        let id = WaiterID(value: state.value.nextWaiter)
        state.value.waiters.append((id, completion))
        return id
    }

    /// Stops waiting: the request gave up (its client left, or it timed out).
    func cancel(_ id: WaiterID) {
        eventLoop.preconditionInEventLoop()
        if let index = state.value.waiters.firstIndex(where: { $0.id == id }) {
            state.value.waiters.remove(at: index)
        }
    }

    /// Returns a connection after a complete exchange; closes it if it cannot be reused.
    func release(_ connection: UpstreamConnection) {
        eventLoop.preconditionInEventLoop()
        guard connection.reusable, connection.channel.isActive else {
            connection.close()
            return
        }
        connection.delegate = nil
        if let waiter = state.value.waiters.popFirst() {
            waiter.completion(.success((connection, true)))
            return
        }
        guard state.value.idle.count < maxIdle else {
            connection.close()
            return
        }
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) {
            connection.close()
        }
        state.value.idle.append(connection)
    }

    /// Closes every idle connection.
    func closeIdle() -> EventLoopFuture<Void> {
        eventLoop.submit {
            let connections = self.state.value.idle
            self.state.value.idle = []
            for connection in connections { connection.close() }
        }
    }

    private func connect(_ completion: @escaping Completion) {
        state.value.open += 1
        let upstream = self.upstream
        let timeout = connectTimeout
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Framing headers are set by the proxy (ProxyRequest.upstreamHead), never guessed.
                    var encoder = HTTPRequestEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false
                    try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder(configuration: encoder))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
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
                        self.connectionClosed()
                        completion(.failure(UpstreamError(code: .connectFailed, detail: "upstream connection closed at once")))
                        return
                    }
                    connection.onClose = { [weak self] in
                        self?.forget(connection)
                        self?.connectionClosed()
                    }
                    completion(.success((connection, false)))
                case .failure(let error):
                    self.connectionClosed()
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

    /// A connection closed (or failed to open): a waiter, if any, gets a new one.
    private func connectionClosed() {
        state.value.open -= 1
        if state.value.open < maxConnections, let waiter = state.value.waiters.popFirst() {
            connect(waiter.completion)
        }
    }

    private func forget(_ connection: UpstreamConnection) {
        state.value.idle.removeAll { $0 === connection }
    }
}
