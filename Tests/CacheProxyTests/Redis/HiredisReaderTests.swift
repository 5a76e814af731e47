import NIOCore
import Testing
@testable import CacheProxy

@Suite struct HiredisReaderTests {
    /// A stream of replies of every kind, and what they decode to.
    static let stream: String =
        "+OK\r\n" + "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" + ":42\r\n" + ":-7\r\n"
        + "$5\r\nhello\r\n" + "$0\r\n\r\n" + "$-1\r\n" + "*-1\r\n" + "*0\r\n"
        + "*3\r\n$1\r\na\r\n:1\r\n*2\r\n+x\r\n-ERR inner\r\n"
    static let expected: [RedisValue] = [
        .simpleString("OK"),
        .error(RedisServerError(message: "WRONGTYPE Operation against a key holding the wrong kind of value")),
        .integer(42), .integer(-7),
        .bulkString(ByteBuffer(string: "hello")), .bulkString(ByteBuffer()), .null, .null, .array([]),
        .array([
            .bulkString(ByteBuffer(string: "a")), .integer(1),
            .array([.simpleString("x"), .error(RedisServerError(message: "ERR inner"))]),
        ]),
    ]

    private func decodeAll(_ chunks: [ByteBuffer]) throws -> [RedisValue] {
        let reader = HiredisReader()
        var replies: [RedisValue] = []
        for chunk in chunks {
            try reader.feed(chunk)
            while let reply = try reader.next() { replies.append(reply) }
        }
        return replies
    }

    @Test func decodesEveryReplyKindInOneRead() throws {
        #expect(try decodeAll([ByteBuffer(string: Self.stream)]) == Self.expected)
    }

    @Test func decodesTheSameFedOneByteAtATime() throws {
        let bytes = Array(Self.stream.utf8)
        let chunks = bytes.map { ByteBuffer(bytes: [$0]) }
        #expect(try decodeAll(chunks) == Self.expected)
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let payload = (0...255).map { UInt8($0) } + [0, 0, 13, 10, 36]
        var buffer = ByteBuffer(string: "$\(payload.count)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\n")
        let byteAtATime = buffer.readableBytesView.map { ByteBuffer(bytes: [$0]) }
        #expect(try decodeAll([buffer]) == [.bulkString(ByteBuffer(bytes: payload))])
        #expect(try decodeAll(byteAtATime) == [.bulkString(ByteBuffer(bytes: payload))])
    }

    @Test func incompleteReplyWaitsForMore() throws {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "$10\r\nhello"))
        #expect(try reader.next() == nil)
        try reader.feed(ByteBuffer(string: "world\r\n"))
        #expect(try reader.next() == .bulkString(ByteBuffer(string: "helloworld")))
        #expect(try reader.next() == nil)
    }

    @Test func garbageIsAProtocolError() throws {
        let reader = HiredisReader()
        try reader.feed(ByteBuffer(string: "?what\r\n"))
        let error = #expect(throws: RedisClientError.self) { try reader.next() }
        #expect(error == .protocolError)
        #expect(error?.detail.contains("invalid reply") == true)
    }
}

@Suite struct RedisCommandTests {
    @Test func encodesWithHiredis() {
        let command = RedisCommand("SET", ["key", .bytes([0, 255, 13, 10]), "PX", 1500])
        var expected = ByteBuffer(string: "*5\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n")
        expected.writeBytes([0, 255, 13, 10])
        expected.writeString("\r\n$2\r\nPX\r\n$4\r\n1500\r\n")
        #expect(command.encoded == expected)
        #expect(command.name == "SET")
    }

    @Test func encodesEmptyArguments() {
        let command = RedisCommand("SET", ["", .bytes(ByteBuffer())])
        #expect(command.encoded == ByteBuffer(string: "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n"))
    }

    @Test func drainFeedsLargeReadsInPiecesAndDeliversEveryReplyInOrder() throws {
        // Thirty 2 KiB replies and one of 100 KiB in one read, as a pipelined MGET burst arrives.
        var bytes = ByteBuffer()
        var expected: [RedisValue] = []
        for index in 0..<31 {
            let size = index == 17 ? 100 * 1024 : 2048
            let payload = String(repeating: Character(UnicodeScalar(UInt8(65 + index % 26))), count: size)
            bytes.writeString("$\(size)\r\n\(payload)\r\n")
            expected.append(.bulkString(ByteBuffer(string: payload)))
        }
        bytes.writeString(HiredisReaderTests.stream)
        expected += HiredisReaderTests.expected
        let reader = HiredisReader()
        var replies: [RedisValue] = []
        // Split at an odd place, so one reply spans two reads.
        let first = bytes.readSlice(length: 5000)!
        #expect(
            try reader.drain(first) {
                replies.append($0); return true
            })
        #expect(
            try reader.drain(bytes) {
                replies.append($0); return true
            })
        #expect(replies == expected)
    }

    @Test func drainStopsWhenTheConsumerSaysSo() throws {
        let reader = HiredisReader()
        var count = 0
        let finished = try reader.drain(ByteBuffer(string: HiredisReaderTests.stream)) { _ in
            count += 1
            return count < 3
        }
        #expect(!finished && count == 3)
    }

    @Test func aReplyAbandonedHalfBuiltIsFreedWithTheReader() throws {
        // The root array exists and holds a child when the bytes turn bad, or when the reader
        // goes away: hiredis hands the root to our freeObject, which releases the whole tree.
        for tail in ["!bad\r\n", ""] {
            let reader = HiredisReader()
            try reader.feed(ByteBuffer(string: "*3\r\n$1\r\na\r\n*2\r\n:1\r\n" + tail))
            if tail.isEmpty {
                #expect(try reader.next() == nil)
            } else {
                #expect(throws: RedisClientError.self) { try reader.next() }
            }
        }
    }

    @Test func nestedRepliesKeepTheirShapeAcrossReads() throws {
        let reply = "*2\r\n*2\r\n$3\r\nabc\r\n$-1\r\n*1\r\n*1\r\n:5\r\n"
        let expected: RedisValue = .array([.array([.bulkString(ByteBuffer(string: "abc")), .null]), .array([.array([.integer(5)])])])
        for split in 1..<reply.utf8.count {
            let reader = HiredisReader()
            let bytes = Array(reply.utf8)
            try reader.feed(ByteBuffer(bytes: bytes[..<split]))
            var value = try reader.next()
            if value == nil {
                try reader.feed(ByteBuffer(bytes: bytes[split...]))
                value = try reader.next()
            }
            #expect(value == expected)
        }
    }
}
