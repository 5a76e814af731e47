import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response as the tests see it.
struct TestResponse: Sendable {
    let status: HTTPResponseStatus
    let headers: HTTPHeaders
    let body: ByteBuffer

    var text: String { String(buffer: body) }
    var xCache: String? { headers.first(name: "x-cache") }
    var cacheStatus: String? { headers.first(name: "cache-status") }
    /// The origin's request count for the path, as the origin reported it.
    var originCount: Int? { headers.first(name: "x-origin-count").flatMap(Int.init) }

    /// The echoed JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }
}

/// A minimal real HTTP/1.1 client over loopback: one connection per request.
struct TestHTTPClient: Sendable {
    let port: Int
    let group: EventLoopGroup
    /// The `Host` header sent; default `127.0.0.1:<port>`.
    var host: String? = nil

    func request(
        _ method: HTTPMethod, _ uri: String, headers: [(String, String)] = [], body: ByteBuffer? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> TestResponse {
        let promise = group.next().makePromise(of: TestResponse.self)
        let channel = try await ClientBootstrap(group: promise.futureResult.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "host", value: host ?? "127.0.0.1:\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)")
        } else if [.POST, .PUT, .PATCH].contains(method) {
            head.headers.replaceOrAdd(name: "content-length", value: "0")
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(TestFailure("request timed out")) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    func get(_ uri: String, headers: [(String, String)] = [], body: String? = nil) async throws -> TestResponse {
        try await request(.GET, uri, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }

    func post(_ uri: String, json: String, headers: [(String, String)] = []) async throws -> TestResponse {
        try await request(.POST, uri, headers: [("content-type", "application/json")] + headers, body: ByteBuffer(string: json))
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<TestResponse>
    var head: HTTPResponseHead?
    var body = ByteBuffer()

    init(promise: EventLoopPromise<TestResponse>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code >= 100 && head.status.code < 200 { return }
            self.head = head
        case .body(var part): body.writeBuffer(&part)
        case .end:
            if let head { promise.succeed(TestResponse(status: head.status, headers: head.headers, body: body)) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(TestFailure("connection closed before the response ended"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

/// Connects a blocking TCP socket to a loopback port; the caller closes it.
func connectSocket(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket") }
    if var size = receiveBuffer {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        throw TestFailure("connect")
    }
    return fd
}

/// Sends raw bytes over TCP and reads until the server closes or `until` is satisfied.
/// With `thenSend`, sends it once `until` is first satisfied, then reads until the server closes.
func rawExchange(
    port: Int, send: String, until: @escaping @Sendable (String) -> Bool, timeout: TimeInterval = 10, thenSend: String? = nil
) throws -> String {
    let fd = try connectSocket(port: port)
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
    }
    write(send)
    var pendingSecondPart = thenSend
    var received = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        received += buffer[0..<n]
        if until(String(decoding: received, as: UTF8.self)) {
            guard let second = pendingSecondPart else { break }
            pendingSecondPart = nil
            write(second)
        }
    }
    return String(decoding: received, as: UTF8.self)
}

/// A blocking loopback TCP connection for byte-exact exchanges: it sends bytes as given (any
/// value, NUL included) and reads with a deadline, telling a close (or reset) by the server
/// apart from silence.
final class RawSocket {
    private let fd: Int32
    /// Everything received so far.
    private(set) var received: [UInt8] = []
    /// Whether the server closed (FIN or RST) the connection.
    private(set) var closed = false

    init(port: Int) throws {
        fd = try connectSocket(port: port)
    }

    /// Sends every byte; false if the connection is gone (no SIGPIPE).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Reads until `until(received)` holds, the server closes, or `timeout` seconds pass.
    /// Returns whether `until` holds.
    @discardableResult
    func read(until: ([UInt8]) -> Bool = { _ in false }, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !until(received) {
            guard !closed else { return false }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, Int32(max(1, remaining * 1000)))
            if ready == 0 { continue }
            if ready < 0 { if errno == EINTR { continue } else { return false } }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                received += buffer[0..<n]
            } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                closed = true
            }
        }
        return true
    }

    deinit { Glibc.close(fd) }
}
