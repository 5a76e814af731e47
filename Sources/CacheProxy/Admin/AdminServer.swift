import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener (`admin.listen`): the purge API.
///
/// ```
/// POST /purge   {"tags": ["user:alice", "show_all_user"]}      → {"purged": 3}
///               {"route": "show_all_user"}
///               {"url": "/user/show_all_user/?page=2"}         (every method, body and header variant)
///               {"prefix": "/order/"}
///               … plus "soft": true to mark entries stale instead of deleting them
/// GET  /health  → {"status": "ok"}
/// ```
///
/// Every request needs `Authorization: Bearer <admin.token>` when a token is configured (the
/// config refuses a non-loopback listener without one). Bounds: 64 KiB per body, 64
/// connections at once (more are closed at once), and a connection that sends nothing for
/// 10 s, or takes longer to send a request, is closed.
final class AdminServer: Sendable {
    static let maxBodyBytes = 64 << 10
    static let idleTimeout = TimeAmount.seconds(10)
    static let maxConnections = 64

    private let settings: AdminSettings
    private let storage: any CacheStorage
    private let policy: CachePolicy
    private let logger: Logger

    init(settings: AdminSettings, storage: any CacheStorage, policy: CachePolicy, logger: Logger) {
        self.settings = settings
        self.storage = storage
        self.policy = policy
        self.logger = logger
    }

    /// Binds `settings.listen`; returns the channel (close it to stop).
    func start(group: EventLoopGroup) async throws -> Channel {
        guard let listen = settings.listen else { preconditionFailure("the admin listener is off") }
        let api = AdminAPI(token: settings.token, storage: storage, policy: policy, logger: logger)
        let open = NIOLockedValueBox(0)
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let admitted = open.withLockedValue { count in
                    guard count < Self.maxConnections else { return false }
                    count += 1
                    return true
                }
                guard admitted else { return channel.close() }
                channel.closeFuture.whenComplete { _ in open.withLockedValue { $0 -= 1 } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(api: api))
                }
            }
            .bind(host: listen.host, port: listen.port)
            .get()
    }
}

/// What the admin API does with a complete request: pure except for the storage call.
struct AdminAPI: Sendable {
    let token: String?
    let storage: any CacheStorage
    let policy: CachePolicy
    let logger: Logger

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var json: String
    }

    func handle(_ head: HTTPRequestHead, body: ByteBuffer, on eventLoop: EventLoop) -> EventLoopFuture<Response> {
        if let token, !AdminToken.matches(head.headers.first(name: "authorization"), token: token) {
            return eventLoop.makeSucceededFuture(
                Response(status: .unauthorized, json: error("a valid Authorization: Bearer token is required")))
        }
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch (head.method, path) {
        case (.GET, "/health"):
            return eventLoop.makeSucceededFuture(Response(status: .ok, json: "{\"status\": \"ok\"}\n"))
        case (.POST, "/purge"):
            let request: (PurgeSelector, Bool)
            switch parsePurge(body) {
            case .success(let parsed): request = parsed
            case .failure(let problem): return eventLoop.makeSucceededFuture(Response(status: .badRequest, json: error(problem.message)))
            }
            let (selector, soft) = request
            let started = NIODeadline.now()
            return storage.purge(selector, soft: soft, on: eventLoop).map { count in
                let ms = Double((NIODeadline.now() - started).nanoseconds) / 1e6
                logger.info("purge", metadata: ["selector": "\(selector)", "soft": "\(soft)", "purged": "\(count)", "ms": "\(ms)"])
                return Response(status: .ok, json: "{\"purged\": \(count), \"soft\": \(soft)}\n")
            }.recover { failure in
                logger.warning("purge failed", metadata: ["selector": "\(selector)", "error": "\(failure)"])
                return Response(status: .serviceUnavailable, json: error("the purge failed: Redis did not answer (\(failure))"))
            }
        case (_, "/purge"), (_, "/health"):
            return eventLoop.makeSucceededFuture(Response(status: .methodNotAllowed, json: error("use POST /purge or GET /health")))
        default:
            return eventLoop.makeSucceededFuture(Response(status: .notFound, json: error("no such endpoint; POST /purge, GET /health")))
        }
    }

    struct Problem: Error {
        let message: String
    }

    /// `{"tags"|"route"|"url"|"prefix": …, "soft": bool}` with exactly one selector.
    func parsePurge(_ body: ByteBuffer) -> Result<(PurgeSelector, Bool), Problem> {
        guard let value = try? JSONValue.parse(body), case .object(let fields) = value else {
            return .failure(Problem(message: "the body must be a JSON object, e.g. {\"tags\": [\"user:alice\"]}"))
        }
        let known: Set<String> = ["tags", "route", "url", "prefix", "soft"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            return .failure(Problem(message: "unknown field \"\(unknown)\"; expected one of tags, route, url, prefix, and soft"))
        }
        var soft = false
        switch fields["soft"] {
        case nil: break
        case .bool(let flag)?: soft = flag
        default: return .failure(Problem(message: "soft must be true or false"))
        }
        let selectors = fields.keys.filter { $0 != "soft" }
        guard selectors.count == 1, let name = selectors.first, let field = fields[name] else {
            return .failure(Problem(message: "give exactly one of tags, route, url or prefix"))
        }
        switch (name, field) {
        case ("tags", .array(let items)):
            var tags: [String] = []
            for item in items {
                guard case .string(let tag) = item, !tag.isEmpty else {
                    return .failure(Problem(message: "tags must be non-empty strings"))
                }
                tags.append(tag)
            }
            guard !tags.isEmpty, tags.count <= 10_000 else { return .failure(Problem(message: "give 1 to 10,000 tags")) }
            return .success((.tags(tags), soft))
        case ("route", .string(let route)):
            guard policy.routes.contains(where: { $0.name == route }) else {
                let names = policy.routes.map(\.name).joined(separator: ", ")
                return .failure(Problem(message: "no route is named \"\(route)\" (routes: \(names))"))
            }
            return .success((.tags([route]), soft))
        case ("url", .string(let url)):
            guard url.hasPrefix("/") || url.hasPrefix("http://") || url.hasPrefix("https://") else {
                return .failure(Problem(message: "url must be a path (/a/b?x=1) or an absolute http URL"))
            }
            return .success((policy.purgeSelector(url: url), soft))
        case ("prefix", .string(let prefix)):
            guard prefix.hasPrefix("/"), !prefix.contains(" ") else {
                return .failure(Problem(message: "prefix must be a path starting with /"))
            }
            return .success((.prefix(prefix), soft))
        default:
            return .failure(Problem(message: "\(name) has the wrong type (tags: a list of strings; route, url, prefix: a string)"))
        }
    }

    func error(_ message: String) -> String {
        "{\"error\": \(ProxyResponses.jsonString(message))}\n"
    }
}

/// One admin connection: collects a request (bounded), answers it, one at a time.
final class AdminHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: AdminAPI
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false
    private var timeout: Scheduled<Void>?

    init(api: AdminAPI) {
        self.api = api
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armTimeout(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
    }

    /// Closes the connection unless a whole request arrives within the idle timeout.
    private func armTimeout(_ context: ChannelHandlerContext) {
        timeout?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: AdminServer.idleTimeout) { loopBound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var part):
            if body.readableBytes + part.readableBytes > AdminServer.maxBodyBytes {
                tooLarge = true
            } else {
                body.writeBuffer(&part)
            }
        case .end:
            timeout?.cancel()
            guard let head else { return }
            self.head = nil
            let keepAlive = head.isKeepAlive
            if tooLarge {
                write(
                    context, .init(status: .payloadTooLarge, json: api.error("the body is larger than 64 KiB")), version: head.version,
                    keepAlive: false)
                return
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            api.handle(head, body: body, on: context.eventLoop).whenSuccess { response in
                let (handler, context) = loopBound.value
                handler.write(context, response, version: head.version, keepAlive: keepAlive)
            }
        }
    }

    private func write(_ context: ChannelHandlerContext, _ response: AdminAPI.Response, version: HTTPVersion, keepAlive: Bool) {
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(response.json.utf8.count))])
        if response.status == .unauthorized { headers.add(name: "www-authenticate", value: "Bearer") }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.json)))), promise: nil)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { loopBound.value.close(promise: nil) }
        }
        if keepAlive { armTimeout(context) }
    }
}
