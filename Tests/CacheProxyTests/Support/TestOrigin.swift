import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP origin on a loopback port that counts requests per path and answers according to
/// the path:
///
/// - `/status/N…` → status N; `/set-cookie…`, `/no-store…`, `/private…` → 200 with that header;
/// - `/binary…` → all 256 byte values, 4 times; `/large/N…` → N bytes (`?chunked=1`: chunked);
/// - `/slow/MS…` → answers after MS milliseconds; `/close…` → closes without answering;
/// - `/flaky…` → answers the first request on a connection, closes at the second;
/// - `/stall…` → sends the head and 5 of 10 body bytes, then nothing more;
/// - `/toggle…` → the status set with ``setToggleStatus(_:)`` (200 at first), echo body; with
///   status 0 it closes the connection without answering;
/// - anything else → 200 JSON echoing method, path, query, body and the request count.
///
/// Every response carries `X-Origin-Count` (this path's count so far).
final class TestOrigin: Sendable {
    let port: Int
    private let channel: Channel
    private let counts: NIOLockedValueBox<[String: Int]>
    private let lastHeaders: NIOLockedValueBox<[String: HTTPHeaders]>
    private let toggle: NIOLockedValueBox<Int>

    private init(
        port: Int, channel: Channel, counts: NIOLockedValueBox<[String: Int]>, lastHeaders: NIOLockedValueBox<[String: HTTPHeaders]>,
        toggle: NIOLockedValueBox<Int>
    ) {
        self.port = port
        self.channel = channel
        self.counts = counts
        self.lastHeaders = lastHeaders
        self.toggle = toggle
    }

    /// The status `/toggle…` answers with from now on.
    func setToggleStatus(_ status: Int) { toggle.withLockedValue { $0 = status } }

    static func start(group: EventLoopGroup, port: Int = 0) async throws -> TestOrigin {
        let counts = NIOLockedValueBox([String: Int]())
        let lastHeaders = NIOLockedValueBox([String: HTTPHeaders]())
        let toggle = NIOLockedValueBox(200)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 2048)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(OriginHandler(counts: counts, lastHeaders: lastHeaders, toggle: toggle))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        return TestOrigin(port: channel.localAddress!.port!, channel: channel, counts: counts, lastHeaders: lastHeaders, toggle: toggle)
    }

    /// How many requests reached `path` (without query).
    func count(_ path: String) -> Int { counts.withLockedValue { $0[path] ?? 0 } }

    /// The headers of the last request to `path`.
    func headers(_ path: String) -> HTTPHeaders? { lastHeaders.withLockedValue { $0[path] } }

    func stop() async {
        try? await channel.close()
    }
}

private final class OriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let counts: NIOLockedValueBox<[String: Int]>
    let lastHeaders: NIOLockedValueBox<[String: HTTPHeaders]>
    let toggle: NIOLockedValueBox<Int>
    var head: HTTPRequestHead?
    var body = ByteBuffer()
    var servedOnThisConnection = 0

    init(counts: NIOLockedValueBox<[String: Int]>, lastHeaders: NIOLockedValueBox<[String: HTTPHeaders]>, toggle: NIOLockedValueBox<Int>) {
        self.counts = counts
        self.lastHeaders = lastHeaders
        self.toggle = toggle
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        guard let head else { return }
        let uri = head.uri
        let path = String(uri.split(separator: "?", maxSplits: 1).first ?? "")
        let query = uri.contains("?") ? String(uri.split(separator: "?", maxSplits: 1)[1]) : ""
        let count = counts.withLockedValue { counts -> Int in
            counts[path, default: 0] += 1
            return counts[path]!
        }
        lastHeaders.withLockedValue { $0[path] = head.headers }
        var headers = HTTPHeaders([("x-origin-count", "\(count)")])
        var status = HTTPResponseStatus.ok
        let segments = path.split(separator: "/")
        var responseBody: ByteBuffer
        var chunked = false

        switch segments.first.map(String.init) ?? "" {
        case "close":
            context.close(promise: nil)
            return
        case "flaky" where servedOnThisConnection > 0:
            // A keep-alive connection the server drops as the next request arrives (an idle
            // timeout racing the client): closed without an answer.
            counts.withLockedValue { $0[path]! -= 1 }
            context.close(promise: nil)
            return
        case "slow":
            let delay = Int64(segments.dropFirst().first.flatMap { Int($0) } ?? 1000)
            let snapshot = (head, body)
            self.head = nil
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                self.head = snapshot.0
                self.body = snapshot.1
                self.counts.withLockedValue { $0[path]! -= 1 }
                self.respondEcho(
                    context: context, head: snapshot.0, path: "/slow-done", query: query, count: count, headers: headers, status: .ok)
            }
            return
        case "stall":
            headers.add(name: "content-length", value: "10")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "12345")))), promise: nil)
            self.head = nil
            return
        case "toggle" where toggle.withLockedValue({ $0 }) == 0:
            context.close(promise: nil)
            return
        case "toggle":
            status = HTTPResponseStatus(statusCode: toggle.withLockedValue { $0 })
            responseBody = echo(head: head, path: path, query: query, count: count)
        case "status":
            status = HTTPResponseStatus(statusCode: segments.dropFirst().first.flatMap { Int($0) } ?? 200)
            responseBody = echo(head: head, path: path, query: query, count: count)
        case "set-cookie":
            headers.add(name: "set-cookie", value: "session=abc; Path=/")
            responseBody = echo(head: head, path: path, query: query, count: count)
        case "no-store":
            headers.add(name: "cache-control", value: "no-store")
            responseBody = echo(head: head, path: path, query: query, count: count)
        case "private":
            headers.add(name: "cache-control", value: "private, max-age=60")
            responseBody = echo(head: head, path: path, query: query, count: count)
        case "binary":
            responseBody = ByteBuffer(bytes: Array(repeating: (0...255).map { UInt8($0) }, count: 4).flatMap { $0 })
            headers.add(name: "content-type", value: "application/octet-stream")
        case "large":
            let size = segments.dropFirst().first.flatMap { Int($0) } ?? 0
            responseBody = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            chunked = query.contains("chunked=1")
        case "upload":
            // Answers with the size and a checksum of what it received.
            var sum: UInt64 = 0
            for byte in body.readableBytesView { sum = sum &* 31 &+ UInt64(byte) }
            responseBody = ByteBuffer(string: "{\"received\": \(body.readableBytes), \"sum\": \(sum)}")
        default:
            responseBody = echo(head: head, path: path, query: query, count: count)
            headers.add(name: "content-type", value: "application/json")
        }
        write(context: context, head: head, status: status, headers: headers, body: responseBody, chunked: chunked)
    }

    private func respondEcho(
        context: ChannelHandlerContext, head: HTTPRequestHead, path: String, query: String, count: Int, headers: HTTPHeaders,
        status: HTTPResponseStatus
    ) {
        write(
            context: context, head: head, status: status, headers: headers, body: echo(head: head, path: path, query: query, count: count),
            chunked: false)
    }

    private func write(
        context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer,
        chunked: Bool
    ) {
        var headers = headers
        if chunked {
            headers.add(name: "transfer-encoding", value: "chunked")
        } else {
            headers.add(name: "content-length", value: "\(body.readableBytes)")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            if chunked {
                var rest = body
                while rest.readableBytes > 0, let slice = rest.readSlice(length: min(rest.readableBytes, 16_384)) {
                    context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
                }
            } else {
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        self.head = nil
        servedOnThisConnection += 1
    }

    private func echo(head: HTTPRequestHead, path: String, query: String, count: Int) -> ByteBuffer {
        let object: [String: Any] = [
            "method": head.method.rawValue, "path": path, "query": query, "count": count,
            "body": String(buffer: body), "authorization": head.headers.first(name: "authorization") ?? "",
            "language": head.headers.first(name: "accept-language") ?? "",
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return ByteBuffer(bytes: data)
    }
}
