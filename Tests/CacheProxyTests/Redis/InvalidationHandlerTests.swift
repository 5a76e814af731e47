import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing
@testable import CacheProxy

/// ``InvalidationHandler`` on an `EmbeddedChannel`: Redis's replies in, commands out, the
/// memory tier's state checked after each step.
@Suite struct InvalidationHandlerTests {
    final class Harness {
        let channel = EmbeddedChannel()
        let memory = MemoryCache(maxBytes: 1 << 20, maxEntryBytes: 1 << 20)
        let refusals = NIOLockedValueBox<[String]>([])
        let subscriptions = NIOLockedValueBox(0)
        let handler: InvalidationHandler

        init(acknowledgements: Int = 0) throws {
            let refusals = self.refusals
            let subscriptions = self.subscriptions
            handler = InvalidationHandler(
                prefix: "p:v2:", memory: memory, acknowledgements: acknowledgements,
                heartbeat: .init(interval: .seconds(1), timeout: .seconds(3)),
                onSubscribed: { subscriptions.withLockedValue { $0 += 1 } },
                onRefused: { error in refusals.withLockedValue { $0.append(error.message) } })
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        }

        func receive(_ resp: String) throws {
            try channel.writeInbound(ByteBuffer(string: resp))
        }

        /// Everything written since the last call.
        func written() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }

        func subscribe() throws {
            try receive(":7\r\n")
            try receive("+OK\r\n*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n")
        }

        func fill(_ digest: String) {
            guard let ticket = memory.beginFill(digest) else { return }
            memory.finishFill(ticket, entry: MemoryCacheTests.entry(), now: 0)
        }
    }

    static func push(_ keys: [String]) -> String {
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*\(keys.count)\r\n"
            + keys.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }

    @Test func theHandshakeAsksForTrackingWithItsOwnIDAndGoesLiveOnTheConfirmation() throws {
        let h = try Harness()
        try h.receive(":7\r\n")
        let sent = try h.written()
        #expect(sent.contains("$8\r\nTRACKING\r\n$2\r\non\r\n$8\r\nREDIRECT\r\n$1\r\n7\r\n$5\r\nBCAST\r\n$6\r\nPREFIX\r\n$5\r\np:v2:\r\n"))
        #expect(sent.contains("$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n"))
        #expect(!h.memory.statistics.live)
        try h.receive("+OK\r\n")
        #expect(!h.memory.statistics.live)  // tracking on, not yet subscribed
        try h.receive("*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n")
        #expect(h.memory.statistics.live && h.handler.isLive)
        #expect(h.subscriptions.withLockedValue { $0 } == 1)
    }

    @Test func refusedTrackingNeverGoesLiveEvenIfTheSubscribeSucceeds() throws {
        // Redis 5 (no CLIENT TRACKING) or an ACL: the pipelined SUBSCRIBE still succeeds, and
        // both replies can come in one read.
        let h = try Harness()
        try h.receive(":7\r\n")
        try h.receive("-ERR unknown subcommand 'TRACKING'\r\n*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n")
        #expect(!h.memory.statistics.live)
        #expect(h.subscriptions.withLockedValue { $0 } == 0)
        #expect(h.refusals.withLockedValue { $0 } == ["ERR unknown subcommand 'TRACKING'"])
        h.channel.embeddedEventLoop.run()
        #expect(!h.channel.isActive)
    }

    @Test func aRefusedAuthIsReportedOnceAndClosesTheConnection() throws {
        let h = try Harness(acknowledgements: 1)
        try h.receive("-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n")
        #expect(h.refusals.withLockedValue { $0 } == ["WRONGPASS invalid username-password pair"])
        #expect(!h.memory.statistics.live)
    }

    @Test func pushesDropKeysAndANullDropsEverything() throws {
        let h = try Harness()
        try h.subscribe()
        for digest in ["a1", "b2", "c3"] { h.fill(digest) }
        #expect(h.memory.statistics.entries == 3)
        try h.receive(Self.push(["p:v2:a1", "other:v2:b2"]))
        #expect(h.memory.lookup("a1", now: 0) == nil)
        #expect(h.memory.lookup("b2", now: 0) != nil)  // not our prefix
        try h.receive("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n")  // FLUSHALL
        #expect(h.memory.statistics.entries == 0 && h.memory.statistics.live)
    }

    @Test func theTierIsOffTheMomentTheConnectionCloses() throws {
        let h = try Harness()
        try h.subscribe()
        h.fill("a1")
        let barrier = h.channel.eventLoop.makePromise(of: Void.self)
        h.handler.barrier(barrier)
        try h.channel.close().wait()
        // No tick later: at once.
        #expect(!h.memory.statistics.live && h.memory.statistics.entries == 0)
        #expect(throws: Never.self) { try barrier.futureResult.wait() }
        // A barrier asked now passes at once: the tier is empty and bypassed.
        let late = h.channel.eventLoop.makePromise(of: Void.self)
        h.handler.barrier(late)
        #expect(throws: Never.self) { try late.futureResult.wait() }
    }

    @Test func barriersPassInPongOrderAndAnExpiredOneClosesTheConnection() throws {
        let h = try Harness()
        try h.subscribe()
        _ = try h.written()
        let first = h.channel.eventLoop.makePromise(of: Void.self)
        let second = h.channel.eventLoop.makePromise(of: Void.self)
        h.handler.barrier(first)
        h.handler.barrier(second)
        #expect(try h.written() == "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
        var passed: [Int] = []
        first.futureResult.whenSuccess { passed.append(1) }
        second.futureResult.whenSuccess { passed.append(2) }
        try h.receive("*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        #expect(passed == [1])
        // The second gives up: the connection closes (the tier with it), then it passes.
        #expect(h.handler.expire(second))
        #expect(passed == [1, 2])
        #expect(!h.memory.statistics.live)
    }

    @Test func aSilentConnectionIsClosedByTheHeartbeat() throws {
        let h = try Harness()
        try h.subscribe()
        _ = try h.written()
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try h.written() == "*1\r\n$4\r\nPING\r\n")
        try h.receive("*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try h.written() == "*1\r\n$4\r\nPING\r\n")
        #expect(h.memory.statistics.live)
        // No answer to this one: closed once it is older than the timeout.
        h.channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(!h.memory.statistics.live)
        #expect(!h.channel.isActive)
    }
}
