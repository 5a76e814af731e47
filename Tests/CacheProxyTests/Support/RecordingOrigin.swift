import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP origin on a free loopback port that records everything the proxy sends it: the
/// raw bytes of every accepted connection, and every request it parses, in arrival order.
///
/// The request parser is its own, deliberately small and lenient one rather than NIO's
/// `HTTPRequestDecoder`: llhttp refuses extension methods it does not list (`FOO`) and reports
/// `M-SEARCH` as `MSEARCH`, and the corpus checks that such methods reach the origin byte for
/// byte. The raw bytes are recorded by a separate handler in front of the parser, so what the
/// parser makes of them never hides what arrived.
///
/// Answers (the path decides; the query is ignored):
/// - `/vary/<header>` → 200 with `Vary: <header>`; `/vary-star` → 200 with `Vary: *`;
/// - `/set-cookie…` → 200 with `Set-Cookie`;
/// - `/status/N` → status N, with `Cache-Control: max-age=600` (explicit freshness, which must
///   not make a never-stored status stored);
/// - `/close-after-read…` → records the request, then closes without answering;
/// - `/close-once/…` → like `/close-after-read` the first time its exact target is seen, then
///   answers normally (a retried request succeeds);
/// - `/early/N…` → answers status N as soon as the head has arrived, without reading the body,
///   then closes (an origin that answers before the upload ends);
/// - `/hang…` → records the request and never answers;
/// - `/bad-framing` → a 302 with both `Content-Length` and `Transfer-Encoding`, followed by a
///   second response in the same bytes (a response-splitting origin);
/// - anything else → 200 JSON echo `{"method", "uri", "body", "count"}` (count: requests to
///   this path so far).
///
/// Every answer carries `Content-Length` (none for 1xx, 204 and 304) and `X-Origin-Count`.
final class RecordingOrigin: Sendable {
    /// One request as the origin parsed it.
    struct Request: Sendable, CustomStringConvertible {
        /// Index of the connection it arrived on (0-based, in accept order).
        var connection: Int
        /// The method, byte for byte.
        var method: String
        /// The request target, byte for byte.
        var uri: String
        /// `HTTP/1.1` or whatever the request line said.
        var version: String
        /// The header fields in arrival order, names as sent.
        var headers: HTTPHeaders
        /// The body, decoded from its framing.
        var body: [UInt8]
        /// Whether the body came with `Transfer-Encoding: chunked`.
        var chunked: Bool
        /// The trailer fields of a chunked body, if any.
        var trailers: HTTPHeaders

        /// The path, without the query.
        var path: String { String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }
        var bodyText: String { String(decoding: body, as: UTF8.self) }

        var description: String {
            let fields = headers.map { "\($0.name): \($0.value)" }.joined(separator: " | ")
            return "#\(connection) \(method) \(uri) \(version) [\(fields)] body(\(body.count))=\(bodyText.debugDescription)"
                + (chunked ? " chunked" : "")
        }
    }

    fileprivate struct State {
        var rawByConnection: [[UInt8]] = []
        var requests: [Request] = []
        var counts: [String: Int] = [:]
        var seenTargets: Set<String> = []
        var children: [ObjectIdentifier: Channel] = [:]
    }

    let port: Int
    private let channel: Channel
    private let state: NIOLockedValueBox<State>

    private init(port: Int, channel: Channel, state: NIOLockedValueBox<State>) {
        self.port = port
        self.channel = channel
        self.state = state
    }

    /// Starts an origin on a free loopback port of `group`.
    static func start(group: EventLoopGroup) async throws -> RecordingOrigin {
        let state = NIOLockedValueBox(State())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = state.withLockedValue { state -> Int in
                        state.rawByConnection.append([])
                        state.children[ObjectIdentifier(channel)] = channel
                        return state.rawByConnection.count - 1
                    }
                    channel.closeFuture.whenComplete { _ in
                        _ = state.withLockedValue { $0.children.removeValue(forKey: ObjectIdentifier(channel)) }
                    }
                    try channel.pipeline.syncOperations.addHandler(RawBytesRecorder(connection: id, state: state))
                    try channel.pipeline.syncOperations.addHandler(RecordingOriginHandler(connection: id, state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RecordingOrigin(port: channel.localAddress!.port!, channel: channel, state: state)
    }

    /// Every request parsed so far, in arrival order.
    var requests: [Request] { state.withLockedValue { $0.requests } }

    /// The requests whose path (without query) is `path`.
    func requests(path: String) -> [Request] { requests.filter { $0.path == path } }

    /// All raw bytes received, connection after connection.
    var rawBytes: [UInt8] { state.withLockedValue { $0.rawByConnection.flatMap { $0 } } }

    /// The raw bytes of each accepted connection, in accept order (connections that sent
    /// nothing included).
    var rawBytesByConnection: [[UInt8]] { state.withLockedValue { $0.rawByConnection } }

    /// The raw bytes as text, every byte kept (Latin-1), for searching.
    var rawText: String { String(String.UnicodeScalarView(rawBytes.map { Unicode.Scalar($0) })) }

    /// Forgets every request and raw byte (connections stay open; their later bytes are recorded
    /// under the same index). With `counts` (the default) also the per-path counts and the
    /// targets `/close-once/` has seen; without, a multi-step test keeps counting.
    func reset(counts: Bool = true) {
        state.withLockedValue { state in
            state.rawByConnection = state.rawByConnection.map { _ in [] }
            state.requests = []
            if counts {
                state.counts = [:]
                state.seenTargets = []
            }
        }
    }

    /// Closes the listening socket and every open connection.
    func stop() async {
        let children = state.withLockedValue { Array($0.children.values) }
        for child in children { try? await child.close() }
        try? await channel.close()
    }

    // MARK: Used by the handlers

    fileprivate static func record(_ request: Request, in state: NIOLockedValueBox<State>) -> (count: Int, firstTime: Bool) {
        state.withLockedValue { state in
            state.requests.append(request)
            state.counts[request.path, default: 0] += 1
            let firstTime = state.seenTargets.insert(request.uri).inserted
            return (state.counts[request.path]!, firstTime)
        }
    }

    fileprivate static func recordRaw(_ bytes: ByteBuffer, connection: Int, in state: NIOLockedValueBox<State>) {
        state.withLockedValue { $0.rawByConnection[connection] += Array(bytes.readableBytesView) }
    }
}

/// First in the pipeline: records every byte the connection receives, then passes it on.
private final class RawBytesRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let connection: Int
    let state: NIOLockedValueBox<RecordingOrigin.State>

    init(connection: Int, state: NIOLockedValueBox<RecordingOrigin.State>) {
        self.connection = connection
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        RecordingOrigin.recordRaw(unwrapInboundIn(data), connection: connection, in: state)
        context.fireChannelRead(data)
    }
}

/// Parses requests out of the byte stream and answers them (see ``RecordingOrigin``).
private final class RecordingOriginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let connection: Int
    let state: NIOLockedValueBox<RecordingOrigin.State>
    private var buffer: [UInt8] = []
    /// Set once the connection is done with (closed, hanging, or answered early).
    private var stopped = false

    init(connection: Int, state: NIOLockedValueBox<RecordingOrigin.State>) {
        self.connection = connection
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        buffer += Array(unwrapInboundIn(data).readableBytesView)
        while !stopped, let consumed = parseOne(context: context) {
            buffer.removeFirst(consumed)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Handles one request from the front of `buffer`; the bytes it used, or nil until more arrive.
    private func parseOne(context: ChannelHandlerContext) -> Int? {
        guard let headEnd = find([13, 10, 13, 10], in: buffer, from: 0) else { return nil }
        let headText = String(decoding: buffer[0..<headEnd], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        // Tolerate empty lines before the request line.
        while lines.first == "" { lines.removeFirst() }
        let requestLine = lines.first ?? ""
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        let method = parts.first.map(String.init) ?? ""
        let uri = parts.count > 1 ? String(parts[1]) : ""
        let version = parts.count > 2 ? parts[2...].joined(separator: " ") : ""
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else {
                headers.add(name: line, value: "")
                continue
            }
            headers.add(
                name: String(line[..<colon]), value: String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        var request = RecordingOrigin.Request(
            connection: connection, method: method, uri: uri, version: version, headers: headers, body: [], chunked: false,
            trailers: HTTPHeaders())
        let bodyStart = headEnd + 4

        if path.hasPrefix("/early/") {
            let status = Int(path.dropFirst("/early/".count).prefix(while: \.isNumber)) ?? 200
            request.body = Array(buffer[bodyStart...])
            let (count, _) = RecordingOrigin.record(request, in: state)
            respond(context: context, request: request, status: status, extra: [], body: echo(request, count: count), close: true)
            return nil
        }

        var consumed: Int
        let codings = headers["transfer-encoding"].joined(separator: ",").lowercased()
        if codings.contains("chunked") {
            guard let (body, trailers, end) = decodeChunked(from: bodyStart) else { return nil }
            request.body = body
            request.chunked = true
            request.trailers = trailers
            consumed = end
        } else if let length = headers.first(name: "content-length").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
            guard buffer.count - bodyStart >= length else { return nil }
            request.body = Array(buffer[bodyStart..<(bodyStart + length)])
            consumed = bodyStart + length
        } else {
            consumed = bodyStart
        }
        let (count, firstTime) = RecordingOrigin.record(request, in: state)

        if path.hasPrefix("/close-after-read") || (path.hasPrefix("/close-once/") && firstTime) {
            stopped = true
            context.close(promise: nil)
            return nil
        }
        if path.hasPrefix("/hang") {
            stopped = true
            return nil
        }
        if path == "/bad-framing" {
            let raw =
                "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: raw)), promise: nil)
            consumed = buffer.count
            return consumed
        }
        var status = 200
        var extra: [(String, String)] = [("Content-Type", "application/json")]
        if path.hasPrefix("/vary/") {
            extra.append(("Vary", String(path.dropFirst("/vary/".count))))
        } else if path == "/vary-star" {
            extra.append(("Vary", "*"))
        } else if path.hasPrefix("/set-cookie") {
            extra.append(("Set-Cookie", "session=abc; Path=/"))
        } else if path.hasPrefix("/status/") {
            status = Int(path.dropFirst("/status/".count).prefix(while: \.isNumber)) ?? 200
            extra.append(("Cache-Control", "max-age=600"))
        }
        let close = headers["connection"].contains { $0.lowercased().contains("close") }
        respond(context: context, request: request, status: status, extra: extra, body: echo(request, count: count), close: close)
        return consumed
    }

    /// Decodes a chunked body starting at `start`: (body, trailers, end offset), or nil if incomplete.
    private func decodeChunked(from start: Int) -> ([UInt8], HTTPHeaders, Int)? {
        var body: [UInt8] = []
        var index = start
        while true {
            guard let lineEnd = find([13, 10], in: buffer, from: index) else { return nil }
            let line = String(decoding: buffer[index..<lineEnd], as: UTF8.self)
            let sizeText = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
            index = lineEnd + 2
            if size == 0 { break }
            guard buffer.count >= index + size + 2 else { return nil }
            body += buffer[index..<(index + size)]
            index += size + 2
        }
        var trailers = HTTPHeaders()
        while true {
            guard let lineEnd = find([13, 10], in: buffer, from: index) else { return nil }
            defer { index = lineEnd + 2 }
            if lineEnd == index { break }
            let line = String(decoding: buffer[index..<lineEnd], as: UTF8.self)
            if let colon = line.firstIndex(of: ":") {
                trailers.add(
                    name: String(line[..<colon]), value: String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
        }
        return (body, trailers, index)
    }

    private func echo(_ request: RecordingOrigin.Request, count: Int) -> [UInt8] {
        let object: [String: Any] = ["method": request.method, "uri": request.uri, "body": request.bodyText, "count": count]
        return Array(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private func respond(
        context: ChannelHandlerContext, request: RecordingOrigin.Request, status: Int, extra: [(String, String)], body: [UInt8], close: Bool
    ) {
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        var head = "HTTP/1.1 \(status) \(reason)\r\n"
        let bodyless = status < 200 || status == 204 || status == 304
        let count = state.withLockedValue { $0.counts[request.path] ?? 0 }
        head += "X-Origin-Count: \(count)\r\n"
        for (name, value) in extra { head += "\(name): \(value)\r\n" }
        if !bodyless { head += "Content-Length: \(body.count)\r\n" }
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        var out = ByteBuffer(string: head)
        if !bodyless, request.method != "HEAD" { out.writeBytes(body) }
        let written = context.writeAndFlush(wrapOutboundOut(out))
        if close {
            stopped = true
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

private func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
    guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
    var index = from
    while index <= haystack.count - needle.count {
        if haystack[index] == needle[0], Array(haystack[index..<(index + needle.count)]) == needle { return index }
        index += 1
    }
    return nil
}
