import NIOCore
import NIOHTTP1

/// Receives the upstream's answer to one forwarded request. Called on the connection's loop.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamResponseHead(_ head: HTTPResponseHead)
    func upstreamResponseBody(_ body: ByteBuffer)
    /// A batch of reads ended: time to flush what was written to the client.
    func upstreamReadComplete()
    func upstreamResponseEnd()
    /// The connection failed or closed before the response ended.
    func upstreamFailed(_ error: Error)
    /// The upstream channel's writability changed (request-body backpressure).
    func upstreamWritabilityChanged(isWritable: Bool)
}

/// One keep-alive HTTP/1.1 connection to the upstream, owned by the pool of its event loop.
/// Serves one request at a time; the current request's ``UpstreamResponseDelegate`` gets the
/// response parts.
final class UpstreamConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let channel: Channel
    /// The current exchange; nil while idle in the pool.
    weak var delegate: UpstreamResponseDelegate?
    /// Whether the last response allows reusing the connection.
    private(set) var reusable = true
    /// Whether any part of the current response has arrived.
    private(set) var responseStarted = false
    /// Scheduled close while idle in the pool.
    var idleTimer: Scheduled<Void>?
    /// Called once when the channel closes (the pool forgets the connection).
    var onClose: (() -> Void)?

    init(channel: Channel) {
        self.channel = channel
    }

    /// Starts a new request on this connection for `delegate`.
    func begin(_ delegate: UpstreamResponseDelegate) {
        self.delegate = delegate
        self.responseStarted = false
        idleTimer?.cancel()
        idleTimer = nil
    }

    /// Writes a request part (not flushed).
    func write(_ part: HTTPClientRequestPart) {
        channel.write(part, promise: nil)
    }

    func flush() {
        channel.flush()
    }

    /// Closes the connection; it will not be reused.
    func close() {
        reusable = false
        delegate = nil
        channel.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        responseStarted = true
        switch part {
        case .head(let head):
            if head.status.code >= 100 && head.status.code < 200 {
                return  // informational: the proxy answers `Expect: 100-continue` itself
            }
            reusable = reusable && head.isKeepAlive
            delegate?.upstreamResponseHead(head)
        case .body(let body):
            delegate?.upstreamResponseBody(body)
        case .end:
            let delegate = self.delegate
            self.delegate = nil
            delegate?.upstreamResponseEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    /// Pauses or resumes reading the response (backpressure from a slow client).
    func setReading(_ reading: Bool) {
        guard let options = channel.syncOptions, (try? options.getOption(ChannelOptions.autoRead)) != reading else { return }
        try? options.setOption(ChannelOptions.autoRead, value: reading)
        if reading { channel.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        reusable = false
        idleTimer?.cancel()
        idleTimer = nil
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(UpstreamError.closed)
        onClose?()
        onClose = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        reusable = false
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(error)
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamConnection: Sendable {}

/// Why forwarding to the upstream failed.
struct UpstreamError: Error, CustomStringConvertible {
    enum Code {
        case connectFailed
        case connectTimeout
        case closed
        case responseTimeout
        /// Every connection of the loop is busy and the wait queue is full.
        case poolExhausted
    }

    let code: Code
    let detail: String

    static let closed = UpstreamError(code: .closed, detail: "the upstream closed the connection before the response was complete")
    static let responseTimeout = UpstreamError(code: .responseTimeout, detail: "the upstream did not answer in time")

    var description: String { detail }
}
