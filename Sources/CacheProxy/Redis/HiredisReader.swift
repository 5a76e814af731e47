import CHiredis
import NIOCore

/// Incremental RESP parser backed by hiredis's `redisReader`.
///
/// hiredis parses; the reply objects are ours (``ReplyNode``, built by the callbacks of
/// ``replyFunctions``): a bulk string is copied once, from hiredis's read buffer straight into
/// its `ByteBuffer`, instead of into a `redisReply` first and then again into the buffer.
///
/// Owns the C reader and frees it in `deinit`. Not `Sendable`: it belongs to one connection and
/// is used only on that connection's event loop. Feed it bytes as they arrive and pull complete
/// replies out; a reply split across any number of reads decodes the same as one read whole.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>

    /// Creates a reader.
    init() {
        guard let reader = redisReaderCreateWithFunctions(replyFunctions) else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        // hiredis frees its buffer whenever it is empty with more than 16 KiB unused (its
        // default), so every large reply regrew it from nothing: reallocations by doubling and
        // fresh pages each time (16% of the CPU on 100 KB Redis hits in `perf`). Keep up to 1 MiB.
        chiredis_reader_set_max_buffer(reader, Self.maxIdleBuffer)
        self.reader = reader
    }

    /// Unused buffer space the reader keeps between replies.
    static let maxIdleBuffer = 1 << 20

    deinit {
        redisReaderFree(reader)
    }

    /// Appends received bytes to the reader's buffer.
    func feed(_ buffer: ByteBuffer) throws(RedisClientError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw readerError() }
    }

    /// Largest piece ``drain(_:into:)`` feeds at once.
    static let feedPiece = 4096

    /// Feeds `buffer` and hands every reply completed by it to `deliver`, in order, until
    /// `deliver` returns false (then returns false). The bytes go in pieces of at most
    /// ``feedPiece``: after each reply, once it has consumed 1 KiB, hiredis moves the unparsed
    /// rest of its buffer to the front, so a 64 KiB read fed whole and holding thirty pipelined
    /// 2 KiB replies cost about 1 MiB of `memmove`; fed in 4 KiB pieces, under 128 KiB.
    func drain(_ buffer: ByteBuffer, into deliver: (RedisValue) -> Bool) throws(RedisClientError) -> Bool {
        var rest = buffer
        repeat {
            let piece = rest.readSlice(length: min(rest.readableBytes, Self.feedPiece))!
            try feed(piece)
            while let reply = try next() {
                guard deliver(reply) else { return false }
            }
        } while rest.readableBytes > 0
        return true
    }

    /// The next complete reply, or nil when more bytes are needed.
    ///
    /// Throws ``RedisClientError/protocolError`` when the bytes are not RESP; the reader is
    /// unusable afterwards and the connection must be closed.
    func next() throws(RedisClientError) -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else { throw readerError() }
        guard let raw else { return nil }
        return Unmanaged<ReplyNode>.fromOpaque(raw).takeRetainedValue().value()
    }

    private func readerError() -> RedisClientError {
        let message = String(cString: chiredis_reader_error(reader))
        return RedisClientError.protocolError.withDetail("invalid reply from Redis: \(message)")
    }
}

@available(*, unavailable)
extension HiredisReader: Sendable {}

/// One node of a reply being built by hiredis's callbacks: the root is retained by the pointer
/// handed to hiredis (released by ``HiredisReader/next()``, or by `freeObject` when hiredis gives
/// up on a malformed reply); every other node is owned by its parent's `elements`.
final class ReplyNode {
    enum Kind {
        case bytes(ByteBuffer)
        case status(String)
        case error(String)
        case integer(Int64)
        case null
        case array
    }

    let kind: Kind
    var elements: [ReplyNode?]

    init(_ kind: Kind, elements: Int = 0) {
        self.kind = kind
        self.elements = Array(repeating: nil, count: elements)
    }

    func value() -> RedisValue {
        switch kind {
        case .bytes(let bytes): return .bulkString(bytes)
        case .status(let text): return .simpleString(text)
        case .error(let text): return .error(RedisServerError(message: text))
        case .integer(let value): return .integer(value)
        case .null: return .null
        case .array: return .array(elements.map { $0?.value() ?? .null })
        }
    }

    /// Hands `node` to hiredis: the root retained, a child stored in its parent.
    static func attach(_ node: ReplyNode, to task: UnsafePointer<redisReadTask>) -> UnsafeMutableRawPointer {
        guard let parent = task.pointee.parent, let parentObject = parent.pointee.obj else {
            return Unmanaged.passRetained(node).toOpaque()
        }
        let parentNode = Unmanaged<ReplyNode>.fromOpaque(parentObject).takeUnretainedValue()
        let index = Int(task.pointee.idx)
        if index >= 0, index < parentNode.elements.count { parentNode.elements[index] = node }
        return Unmanaged.passUnretained(node).toOpaque()
    }
}

/// The callbacks hiredis builds replies with (it keeps the pointer: allocated once, never freed).
private nonisolated(unsafe) let replyFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(
        to: redisReplyObjectFunctions(
            createString: { task, pointer, length in
                guard let task else { return nil }
                let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
                let kind: ReplyNode.Kind
                switch task.pointee.type {
                case REDIS_REPLY_STATUS: kind = .status(String(decoding: bytes, as: UTF8.self))
                case REDIS_REPLY_ERROR: kind = .error(String(decoding: bytes, as: UTF8.self))
                default: kind = .bytes(length > 0 ? replyAllocator.buffer(bytes: bytes) : ByteBuffer())
                }
                return ReplyNode.attach(ReplyNode(kind), to: task)
            },
            createArray: { task, count in
                guard let task else { return nil }
                return ReplyNode.attach(ReplyNode(.array, elements: max(0, Int(count))), to: task)
            },
            createInteger: { task, value in
                guard let task else { return nil }
                return ReplyNode.attach(ReplyNode(.integer(Int64(value))), to: task)
            },
            createNil: { task in
                guard let task else { return nil }
                return ReplyNode.attach(ReplyNode(.null), to: task)
            },
            freeObject: { object in
                guard let object else { return }
                Unmanaged<ReplyNode>.fromOpaque(object).release()
            }))
    return functions
}()

private let replyAllocator = ByteBufferAllocator()
