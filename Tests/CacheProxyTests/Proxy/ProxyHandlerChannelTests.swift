import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import CacheProxy

/// A storage that answers every lookup with the same fresh entry and records the keys asked for.
/// Only for channel-level tests of the shell; the end-to-end tests use a real redis-server.
private final class AlwaysHitStorage: CacheStorage {
    let entry: CacheEntry
    let lookups = NIOLockedValueBox<[CacheKey]>([])

    init(body: String) {
        entry = CacheEntry(status: 200, headers: [("content-type", "text/plain")], body: ByteBuffer(string: body), storedAt: 0, ttl: 60_000)
    }

    func lookup(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<CacheRead> {
        lookups.withLockedValue { $0.append(key) }
        return eventLoop.makeSucceededFuture(CacheRead(.fresh(entry)))
    }

    func store(_ request: StoreRequest, on eventLoop: EventLoop) -> EventLoopFuture<StoreReply> {
        eventLoop.makeSucceededFuture(.stored)
    }

    func purge(_ selector: PurgeSelector, soft: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Int> {
        eventLoop.makeSucceededFuture(0)
    }

    func acquireLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeSucceededFuture(true)
    }

    func releaseLease(_ key: CacheKey, token: String, uncacheable: Bool, on eventLoop: EventLoop) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    func renewLease(_ key: CacheKey, token: String, ttl: TimeAmount, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        eventLoop.makeSucceededFuture(false)
    }

    func peekFill(_ key: CacheKey, on eventLoop: EventLoop) -> EventLoopFuture<FillState> {
        eventLoop.makeSucceededFuture(.abandoned(generation: 0))
    }

    func now() -> Int64 { 1000 }
}

/// ``ProxyHandler`` on an `EmbeddedChannel`: bytes in, bytes out, no sockets.
@Suite struct ProxyHandlerChannelTests {
    private func channel(_ storage: AlwaysHitStorage) throws -> EmbeddedChannel {
        let configuration = try ProxyConfiguration.parse(
            yaml: "listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\nredis:\n  url: redis://127.0.0.1:1\nroutes:\n  - path: /c/*\n",
            file: "test.yaml")
        let channel = EmbeddedChannel()
        let shared = ProxyContext(
            configuration: configuration, storage: storage, eventLoopGroup: channel.embeddedEventLoop,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try channel.pipeline.syncOperations.addHandler(ProxyHandler(shared: shared, clientAddress: "127.0.0.1"))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    private func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
        }
        return text
    }

    @Test func bodyOfAHitIsConsumedBeforeTheNextRequest() throws {
        // Pingora CVE-2025-4366: the body of a request answered from the cache must never be
        // read as the next request.
        let storage = AlwaysHitStorage(body: "cached")
        let channel = try channel(storage)
        let smuggled = "GET /c/smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
        try channel.writeInbound(
            ByteBuffer(
                string: "GET /c/1 HTTP/1.1\r\nHost: h\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n\(smuggled)"
                    + "GET /c/2 HTTP/1.1\r\nHost: h\r\n\r\n"))
        let text = try output(channel)
        #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 2)
        #expect(storage.lookups.withLockedValue { $0.map(\.path) } == ["/c/1", "/c/2"])
        #expect(channel.isActive)
    }

    @Test func aRefusedRequestIsAnsweredAndTheConnectionClosed() throws {
        let channel = try channel(AlwaysHitStorage(body: "x"))
        try channel.writeInbound(ByteBuffer(string: "GET /c/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /c/2 HTTP/1.1\r\nHost: a\r\n\r\n"))
        let text = try output(channel)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(text.contains("connection: close\r\n"))
        #expect(text.components(separatedBy: "HTTP/1.1").count - 1 == 1)
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test func answersWaitWhileTheClientDoesNotRead() throws {
        let storage = AlwaysHitStorage(body: String(repeating: "x", count: 1000))
        let channel = try channel(storage)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        try channel.writeInbound(ByteBuffer(string: String(repeating: "GET /c/1 HTTP/1.1\r\nHost: h\r\n\r\n", count: 3)))
        #expect(try output(channel) == "")
        #expect(storage.lookups.withLockedValue { $0.count } == 0)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(try output(channel).components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 3)
    }

    @Test func methodAndHeadResponsesAreFramedByTheProxy() throws {
        let channel = try channel(AlwaysHitStorage(body: "cached"))
        try channel.writeInbound(ByteBuffer(string: "HEAD /c/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /c/1 HTTP/1.0\r\n\r\n"))
        let text = try output(channel)
        // HEAD: the GET's length, no body; then the HTTP/1.0 GET (closed after).
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        let responses = text.components(separatedBy: "HTTP/1.")
        #expect(responses.count == 3)
        #expect(responses[1].contains("content-length: 6\r\n"))
        #expect(responses[1].hasSuffix("\r\n\r\n"))
        #expect(responses[2].hasSuffix("\r\n\r\ncached"))
        #expect(responses[2].contains("connection: close\r\n"))
    }

    @Test func pipelinedHitsAnsweredInOneReadAreFlushedOnce() throws {
        let channel = try channel(AlwaysHitStorage(body: "cached"))
        let flushes = FlushCounter()
        try channel.pipeline.syncOperations.addHandler(flushes, position: .first)
        try channel.writeInbound(ByteBuffer(string: String(repeating: "GET /c/1 HTTP/1.1\r\nHost: h\r\n\r\n", count: 5)))
        #expect(try output(channel).components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 5)
        #expect(flushes.count == 1)
    }
}

/// Counts the flushes that reach the socket.
private final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = IOData
    var count = 0

    func flush(context: ChannelHandlerContext) {
        count += 1
        context.flush()
    }
}
