import ArgumentParser
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// `cache-proxy-bench origin`: a fast HTTP origin for benchmarks. Every path answers 200 with
/// the same JSON body of `--size` bytes, keep-alive, so what is measured is the proxy.
struct OriginServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "origin", abstract: "A fast JSON origin for benchmarks.")

    @Option(help: "Port to listen on (127.0.0.1).")
    var port: Int

    @Option(help: "Response body size in bytes.")
    var size: Int = 2048

    @Option(help: "Event loop threads.")
    var threads: Int = 1

    @Option(help: "Milliseconds each response waits before it is sent (simulated database time, no CPU).")
    var delayMs: Int = 0

    func run() async throws {
        let body = Self.jsonBody(size: size)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: true)
                    try channel.pipeline.syncOperations.addHandler(OriginHandler(body: body, delay: .milliseconds(Int64(delayMs))))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        print("origin listening on \(channel.localAddress!)")
        try await channel.closeFuture.get()
    }

    /// A JSON array of user-like objects padded to exactly `size` bytes.
    static func jsonBody(size: Int) -> ByteBuffer {
        var text = "["
        var index = 0
        while text.utf8.count < size - 120 {
            if index > 0 { text += "," }
            text += "{\"id\":\(index),\"nick_name\":\"user\(index)\",\"email\":\"user\(index)@example.com\"}"
            index += 1
        }
        text += ",{\"pad\":\"" + String(repeating: "x", count: max(0, size - text.utf8.count - 11)) + "\"}]"
        return ByteBuffer(string: text)
    }
}

final class OriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let body: ByteBuffer
    let headers: HTTPHeaders
    let delay: TimeAmount
    /// Counts requests, when given.
    let counter: NIOLockedValueBox<Int>?

    init(body: ByteBuffer, delay: TimeAmount, counter: NIOLockedValueBox<Int>? = nil) {
        self.body = body
        self.delay = delay
        self.counter = counter
        self.headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(body.readableBytes)")])
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        counter?.withLockedValue { $0 += 1 }
        if delay > .zero {
            context.eventLoop.assumeIsolated().scheduleTask(in: delay) { self.respond(context: context) }
        } else {
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
