import CHiredis
import NIOCore

/// Incremental RESP parser backed by hiredis's `redisReader`.
///
/// Owns the C reader and frees it in `deinit`. Not `Sendable`: it belongs to one connection and
/// is used only on that connection's event loop. Feed it bytes as they arrive and pull complete
/// replies out; a reply split across any number of reads decodes the same as one read whole.
final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let allocator: ByteBufferAllocator

    /// Creates a reader. `allocator` makes the buffers of bulk-string replies (default: a new one).
    init(allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reader (out of memory)")
        }
        // hiredis frees its buffer whenever it is empty with more than 16 KiB unused (its
        // default), so every large reply regrew it from nothing: reallocations by doubling and
        // fresh pages each time (16% of the CPU on 100 KB Redis hits in `perf`). Keep up to 1 MiB.
        chiredis_reader_set_max_buffer(reader, Self.maxIdleBuffer)
        self.reader = reader
        self.allocator = allocator
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
        defer { freeReplyObject(raw) }
        return convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Copies a hiredis reply tree into Swift values. String bytes are copied by length.
    private func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(copyBytes(r.str, r.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(copyString(r.str, r.len))
        case REDIS_REPLY_ERROR:
            return .error(RedisServerError(message: copyString(r.str, r.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var values: [RedisValue] = []
            values.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                guard let element = r.element[index] else {
                    values.append(.null)
                    continue
                }
                values.append(convert(element))
            }
            return .array(values)
        default:
            return .error(RedisServerError(message: "ERR unknown reply type \(r.type)"))
        }
    }

    private func copyBytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> ByteBuffer {
        guard let pointer, length > 0 else { return allocator.buffer(capacity: 0) }
        return allocator.buffer(bytes: UnsafeRawBufferPointer(start: pointer, count: length))
    }

    private func copyString(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> String {
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    private func readerError() -> RedisClientError {
        let message = String(cString: chiredis_reader_error(reader))
        return RedisClientError.protocolError.withDetail("invalid reply from Redis: \(message)")
    }
}

@available(*, unavailable)
extension HiredisReader: Sendable {}
