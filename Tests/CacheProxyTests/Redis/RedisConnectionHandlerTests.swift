import NIOCore
import NIOEmbedded
import Testing
@testable import CacheProxy

/// Channel-level tests of the handler on an `EmbeddedChannel`, with a controllable clock.
@Suite struct RedisConnectionHandlerTests {
    private func makeChannel(url: RedisURL = RedisURL(host: "test")) throws -> (EmbeddedChannel, RedisConnectionHandler) {
        let loop = EmbeddedEventLoop()
        let handler = RedisConnectionHandler(
            url: url, eventLoop: loop, connectDeadline: loop.now + .seconds(1), stallTimeout: .seconds(5), flushStrategy: .batched)
        let channel = EmbeddedChannel(handler: handler, loop: loop)
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 6379)).wait()
        return (channel, handler)
    }

    private func send(
        _ handler: RedisConnectionHandler, _ channel: EmbeddedChannel, _ command: RedisCommand, timeout: TimeAmount = .seconds(1)
    )
        -> EventLoopFuture<RedisValue>
    {
        let promise = channel.eventLoop.makePromise(of: RedisValue.self)
        handler.enqueue(command, deadline: (channel.eventLoop as! EmbeddedEventLoop).now + timeout, promise: promise)
        return promise.futureResult
    }

    @Test func pipelinedCommandsShareOneWriteAndCompleteInOrder() throws {
        let (channel, handler) = try makeChannel()
        let first = send(handler, channel, RedisCommand("GET", ["a"]))
        let second = send(handler, channel, RedisCommand("GET", ["b"]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)  // not flushed until the loop runs
        channel.embeddedEventLoop.run()
        let written = try channel.readOutbound(as: ByteBuffer.self)
        #expect(written == ByteBuffer(string: "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)

        // Replies split across reads at awkward places.
        try channel.writeInbound(ByteBuffer(string: "$1\r\nA\r"))
        try channel.writeInbound(ByteBuffer(string: "\n$-"))
        try channel.writeInbound(ByteBuffer(string: "1\r\n"))
        #expect(try first.wait() == .bulkString(ByteBuffer(string: "A")))
        #expect(try second.wait() == .null)
    }

    @Test func errorReplyFailsOnlyItsCommand() throws {
        let (channel, handler) = try makeChannel()
        let bad = send(handler, channel, RedisCommand("NOPE"))
        let good = send(handler, channel, RedisCommand("PING"))
        channel.embeddedEventLoop.run()
        try channel.writeInbound(ByteBuffer(string: "-ERR unknown command 'NOPE'\r\n+PONG\r\n"))
        #expect(throws: RedisServerError(message: "ERR unknown command 'NOPE'")) { try bad.wait() }
        #expect(try good.wait() == .simpleString("PONG"))
    }

    @Test func timedOutCommandKeepsItsPlaceAndItsLateReplyIsDropped() throws {
        let (channel, handler) = try makeChannel()
        let slow = send(handler, channel, RedisCommand("GET", ["slow"]), timeout: .milliseconds(50))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        let error = #expect(throws: RedisClientError.self) { try slow.wait() }
        #expect(error == .timeout)
        let next = send(handler, channel, RedisCommand("GET", ["next"]))
        channel.embeddedEventLoop.run()
        try channel.writeInbound(ByteBuffer(string: "$4\r\nslow\r\n$4\r\nnext\r\n"))
        #expect(try next.wait() == .bulkString(ByteBuffer(string: "next")))
        #expect(channel.isActive)
    }

    @Test func stalledServerClosesTheConnection() throws {
        let (channel, handler) = try makeChannel()
        let stuck = send(handler, channel, RedisCommand("GET", ["x"]), timeout: .milliseconds(10))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(20))
        #expect(throws: RedisClientError.timeout) { try stuck.wait() }
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        #expect(!channel.isActive)
        let later = send(handler, channel, RedisCommand("PING"))
        #expect(throws: RedisClientError.connectionStalled) { try later.wait() }
    }

    @Test func closeFailsEveryPendingCommand() throws {
        let (channel, handler) = try makeChannel()
        let futures = (0..<5).map { send(handler, channel, RedisCommand("GET", [.integer($0)])) }
        channel.embeddedEventLoop.run()
        try channel.writeInbound(ByteBuffer(string: "$-1\r\n"))
        try channel.close().wait()
        #expect(try futures[0].wait() == .null)
        for future in futures.dropFirst() {
            #expect(throws: RedisClientError.connectionClosed) { try future.wait() }
        }
    }

    @Test func handshakeGoesFirstAndAWrongPasswordIsAClearError() throws {
        let url = RedisURL(host: "test", password: "wrong", database: 2)
        let (channel, handler) = try makeChannel(url: url)
        let get = send(handler, channel, RedisCommand("GET", ["k"]))
        channel.embeddedEventLoop.run()
        var written = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: buffer) }
        #expect(written.hasPrefix("*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*2\r\n$3\r\nGET"))
        _ = try? channel.writeInbound(ByteBuffer(string: "-WRONGPASS invalid username-password pair or user is disabled.\r\n"))
        let error = #expect(throws: RedisClientError.self) { try get.wait() }
        #expect(error == .authenticationFailed)
        #expect(error?.detail.contains("WRONGPASS") == true)
        #expect(throws: RedisClientError.authenticationFailed) { try handler.ready.wait() }
    }

    @Test func unexpectedReplyIsAProtocolError() throws {
        let (channel, _) = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "+OK\r\n"))
        #expect(!channel.isActive)
    }
}
