import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP origin on loopback with state: a tiny users API shaped like the example Flask
/// API, for invalidation tests. Every user has a `version` that each edit increments.
///
/// - `POST /users/create {"nick","name"}` → 201 (409 if it exists)
/// - `PUT /users/edit {"nick","name"}` → 200 (404 if unknown)
/// - `DELETE /users/delete {"nick"}` → 200 (404 if unknown)
/// - `GET /users/all` → 200, every user sorted by nick
/// - `POST /users/one {"nick"}` → 200 that user, 404 if unknown
/// - `GET /users/by-nick/<nick>` → the same by path
/// - `GET /tagged/<name>?keys=a+b` → 200 with `Surrogate-Key: a b`
/// - `POST /echo…` → 200 with this path's request count and the body
/// - `GET /private/<name>` → 200 with `Cache-Control: private` (never stored)
/// - `GET /fallback/<name>` → 200, or 503 while `state.failing` is set
///
/// ``hold(_:)`` makes the next request of `/users/all`, `/users/one`, `/private/…` or `/fallback/…` read its
/// answer at once and send it only when released: a fetch that started before a write and ends
/// after it, or a slow fetch others pile up behind.
final class UsersOrigin: Sendable {
    struct User: Sendable {
        var name: String
        var version: Int
    }

    let port: Int
    private let channel: Channel
    let state: NIOLockedValueBox<State>

    struct State: Sendable {
        var users: [String: User] = [:]
        var counts: [String: Int] = [:]
        var held: [String: EventLoopPromise<Void>] = [:]
        /// Paths whose held request has read its answer.
        var readWhileHeld: Set<String> = []
        /// `/fallback/…` answers 503 while set.
        var failing = false
    }

    private init(port: Int, channel: Channel, state: NIOLockedValueBox<State>) {
        self.port = port
        self.channel = channel
        self.state = state
    }

    static func start(group: EventLoopGroup, users: [String: String] = [:]) async throws -> UsersOrigin {
        var initial = State()
        for (nick, name) in users { initial.users[nick] = User(name: name, version: 1) }
        let state = NIOLockedValueBox(initial)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(UsersHandler(state: state))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return UsersOrigin(port: channel.localAddress!.port!, channel: channel, state: state)
    }

    func count(_ path: String) -> Int { state.withLockedValue { $0.counts[path] ?? 0 } }

    func version(of nick: String) -> Int? { state.withLockedValue { $0.users[nick]?.version } }

    /// Holds the next GET of `path` after it has read its answer; returns the release.
    func hold(_ path: String, on eventLoop: EventLoop) -> EventLoopPromise<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        state.withLockedValue {
            $0.held[path] = promise
            $0.readWhileHeld.remove(path)
        }
        return promise
    }

    /// Whether the held GET of `path` has read its answer (and now waits).
    func hasRead(_ path: String) -> Bool { state.withLockedValue { $0.readWhileHeld.contains(path) } }

    func stop() async {
        try? await channel.close()
    }
}

private final class UsersHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let state: NIOLockedValueBox<UsersOrigin.State>
    var head: HTTPRequestHead?
    var body = ByteBuffer()

    init(state: NIOLockedValueBox<UsersOrigin.State>) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            self.head = nil
            respond(context: context, head: head)
        }
    }

    private static func json(_ object: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    private static func userJSON(_ nick: String, _ user: UsersOrigin.User) -> [String: Any] {
        ["nick": nick, "name": user.name, "version": user.version]
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
        let query = head.uri.contains("?") ? String(head.uri.split(separator: "?", maxSplits: 1)[1]) : ""
        let fields = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let nick = fields["nick"] as? String
        var headers = HTTPHeaders([("content-type", "application/json")])
        let (status, text, held): (HTTPResponseStatus, String, EventLoopPromise<Void>?) = state.withLockedValue { state in
            state.counts[path, default: 0] += 1
            switch (head.method, path) {
            case (.POST, "/users/create"):
                guard let nick, let name = fields["name"] as? String else { return (.badRequest, "{}", nil) }
                guard state.users[nick] == nil else { return (.conflict, "{}", nil) }
                state.users[nick] = .init(name: name, version: 1)
                return (.created, Self.json(Self.userJSON(nick, state.users[nick]!)), nil)
            case (.PUT, "/users/edit"):
                guard let nick, var user = state.users[nick] else { return (.notFound, "{}", nil) }
                user.name = fields["name"] as? String ?? user.name
                user.version += 1
                state.users[nick] = user
                return (.ok, Self.json(Self.userJSON(nick, user)), nil)
            case (.DELETE, "/users/delete"):
                guard let nick, state.users.removeValue(forKey: nick) != nil else { return (.notFound, "{}", nil) }
                return (.ok, Self.json(["deleted": nick]), nil)
            case (.GET, "/users/all"):
                let list = state.users.keys.sorted().map { Self.userJSON($0, state.users[$0]!) }
                let held = state.held.removeValue(forKey: path)
                if held != nil { state.readWhileHeld.insert(path) }
                return (.ok, Self.json(list), held)
            case (.POST, "/users/one"):
                guard let nick, let user = state.users[nick] else { return (.notFound, "{}", nil) }
                let held = state.held.removeValue(forKey: path)
                if held != nil { state.readWhileHeld.insert(path) }
                return (.ok, Self.json(Self.userJSON(nick, user)), held)
            case (.GET, _) where path.hasPrefix("/users/by-nick/"):
                let nick = String(path.dropFirst("/users/by-nick/".count))
                guard let user = state.users[nick] else { return (.notFound, "{}", nil) }
                return (.ok, Self.json(Self.userJSON(nick, user)), nil)
            case (.POST, _) where path.hasPrefix("/echo"):
                return (.ok, Self.json(["count": state.counts[path]!, "body": String(buffer: self.body)]), nil)
            case (.GET, _) where path.hasPrefix("/private/"):
                let held = state.held.removeValue(forKey: path)
                if held != nil { state.readWhileHeld.insert(path) }
                return (.ok, Self.json(["path": path, "count": state.counts[path]!]), held)
            case (.GET, _) where path.hasPrefix("/fallback/"):
                let held = state.held.removeValue(forKey: path)
                if held != nil { state.readWhileHeld.insert(path) }
                return (state.failing ? .serviceUnavailable : .ok, Self.json(["path": path, "count": state.counts[path]!]), held)
            case (.GET, _) where path.hasPrefix("/tagged/"):
                return (.ok, Self.json(["path": path, "count": state.counts[path]!]), nil)
            default:
                return (.notFound, "{}", nil)
            }
        }
        if path.hasPrefix("/private/") { headers.add(name: "cache-control", value: "private") }
        if path.hasPrefix("/tagged/"), let keys = query.split(separator: "&").first(where: { $0.hasPrefix("keys=") }) {
            headers.add(name: "surrogate-key", value: keys.dropFirst(5).replacingOccurrences(of: "+", with: " "))
        }
        headers.add(name: "content-length", value: "\(text.utf8.count)")
        let send = { [self] in
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        if let held {
            held.futureResult.hop(to: context.eventLoop).assumeIsolated().whenComplete { _ in send() }
        } else {
            send()
        }
    }
}
