import NIOCore
import NIOHTTP1

/// A stored response with what later features need: when it was stored, for how long it is
/// fresh, how long it may be served stale (grace), tags for purging, and an extension area.
public struct CacheEntry: Sendable, Hashable {
    /// HTTP status code.
    public var status: Int
    /// Response headers, hop-by-hop and per-response headers (`Age`, `X-Cache`, …) removed,
    /// serialized once (`name: value\r\n` lines): a hit writes these bytes as they are.
    public var headerBlock: ByteBuffer
    /// The headers of ``headerBlock`` (parsed on each use; hits never need them).
    public var headers: [(name: String, value: String)] {
        get { ResponseWire.parseHeaderBlock(headerBlock) }
        set { headerBlock = ResponseWire.headerBlock(newValue) }
    }
    /// The whole body.
    public var body: ByteBuffer
    /// When it was stored, in milliseconds since the Unix epoch (wall clock, shared by every proxy).
    public var storedAt: Int64
    /// Freshness lifetime in milliseconds.
    public var ttl: Int64
    /// How long past `ttl` it may still be served stale, in milliseconds. 0 for now.
    public var grace: Int64
    /// Tags for purging: the route's name, the route's tags and the origin's.
    public var tags: [String]
    /// Marked stale by a soft purge (flag bit 0 of the stored format): served as past its TTL.
    public var invalidated: Bool

    /// Creates an entry.
    public init(
        status: Int, headers: [(name: String, value: String)], body: ByteBuffer, storedAt: Int64, ttl: Int64,
        grace: Int64 = 0, tags: [String] = [], invalidated: Bool = false
    ) {
        self.init(
            status: status, headerBlock: ResponseWire.headerBlock(headers), body: body, storedAt: storedAt, ttl: ttl, grace: grace,
            tags: tags, invalidated: invalidated)
    }

    /// Creates an entry from an already serialized header block.
    init(
        status: Int, headerBlock: ByteBuffer, body: ByteBuffer, storedAt: Int64, ttl: Int64, grace: Int64, tags: [String],
        invalidated: Bool
    ) {
        self.status = status
        self.headerBlock = headerBlock
        self.body = body
        self.storedAt = storedAt
        self.ttl = ttl
        self.grace = grace
        self.tags = tags
        self.invalidated = invalidated
    }

    /// Age in whole seconds at `now` (milliseconds since the epoch), never negative.
    public func age(now: Int64) -> Int {
        Int(max(0, now - storedAt) / 1000)
    }

    /// Remaining freshness in whole seconds at `now`, never negative.
    public func remainingTTL(now: Int64) -> Int {
        Int(max(0, storedAt + ttl - now) / 1000)
    }

    /// Whether it is still fresh at `now` (never, once a soft purge marked it).
    public func isFresh(now: Int64) -> Bool {
        !invalidated && now < storedAt + ttl
    }

    public static func == (lhs: CacheEntry, rhs: CacheEntry) -> Bool {
        lhs.status == rhs.status && lhs.headerBlock == rhs.headerBlock && lhs.body == rhs.body
            && lhs.storedAt == rhs.storedAt && lhs.ttl == rhs.ttl && lhs.grace == rhs.grace && lhs.tags == rhs.tags
            && lhs.invalidated == rhs.invalidated
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(body)
        hasher.combine(storedAt)
    }
}

/// The binary format of a stored entry. All integers big-endian. Version 2 (written):
///
/// ```
/// u8  version (2)      u8  flags (bit 0: invalidated by a soft purge, set in place by SETRANGE)
/// i64 storedAt ms      i64 ttl ms       i64 grace ms
/// u16 status
/// u32 header block length, then the block: `name: value\r\n` lines, written as is on a hit
/// u16 tag count,       then per tag:    u16 length, bytes
/// u16 extension count, then per extension: u16 type, u32 length, bytes (unknown types are skipped)
/// u32 body length, body
/// ```
///
/// Version 1 (read, never written) has `u16 header count` and per header `u16 name length, name,
/// u32 value length, value` in place of the block. The first 26 bytes are the same in both, so
/// ``RedisCacheStorage/isFreshHeader(_:now:)`` reads either. Another version byte gives
/// ``DecodeResult/unknownVersion`` (a miss, never a crash); truncated or inconsistent bytes give
/// ``DecodeResult/corrupt``. A hit decodes without copying: the block and the body are slices
/// of the value.
public enum CacheEntryCodec {
    /// The version this build writes.
    public static let version: UInt8 = 2
    /// The versions this build reads.
    static let readableVersions: ClosedRange<UInt8> = 1...2

    /// What decoding produced.
    public enum DecodeResult: Sendable, Hashable {
        case entry(CacheEntry)
        case unknownVersion(UInt8)
        case corrupt
    }

    /// Encodes `entry`.
    public static func encode(_ entry: CacheEntry, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var tagBytes = 0
        for tag in entry.tags { tagBytes += 2 + tag.utf8.count }
        var buffer = allocator.buffer(capacity: 40 + entry.headerBlock.readableBytes + tagBytes + entry.body.readableBytes)
        buffer.writeInteger(version)
        buffer.writeInteger(UInt8(entry.invalidated ? 1 : 0))
        buffer.writeInteger(entry.storedAt)
        buffer.writeInteger(entry.ttl)
        buffer.writeInteger(entry.grace)
        buffer.writeInteger(UInt16(clamping: entry.status))
        buffer.writeInteger(UInt32(entry.headerBlock.readableBytes))
        buffer.writeImmutableBuffer(entry.headerBlock)
        let tags = entry.tags.prefix(Int(UInt16.max))
        buffer.writeInteger(UInt16(tags.count))
        for tag in tags { writeString(tag, lengthAs: UInt16.self, into: &buffer) }
        buffer.writeInteger(UInt16(0))  // extensions
        buffer.writeInteger(UInt32(entry.body.readableBytes))
        buffer.writeImmutableBuffer(entry.body)
        return buffer
    }

    /// Encodes `entry` in version 1 (for tests of reading old entries).
    static func encodeVersion1(_ entry: CacheEntry) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt8(entry.invalidated ? 1 : 0))
        buffer.writeInteger(entry.storedAt)
        buffer.writeInteger(entry.ttl)
        buffer.writeInteger(entry.grace)
        buffer.writeInteger(UInt16(clamping: entry.status))
        let headers = entry.headers
        buffer.writeInteger(UInt16(headers.count))
        for header in headers {
            writeString(header.name, lengthAs: UInt16.self, into: &buffer)
            writeString(header.value, lengthAs: UInt32.self, into: &buffer)
        }
        buffer.writeInteger(UInt16(entry.tags.count))
        for tag in entry.tags { writeString(tag, lengthAs: UInt16.self, into: &buffer) }
        buffer.writeInteger(UInt16(0))
        buffer.writeInteger(UInt32(entry.body.readableBytes))
        buffer.writeImmutableBuffer(entry.body)
        return buffer
    }

    /// Decodes a stored value.
    public static func decode(_ value: ByteBuffer) -> DecodeResult {
        var buffer = value
        guard let version = buffer.readInteger(as: UInt8.self) else { return .corrupt }
        guard readableVersions.contains(version) else { return .unknownVersion(version) }
        guard let flags = buffer.readInteger(as: UInt8.self),
            let storedAt = buffer.readInteger(as: Int64.self),
            let ttl = buffer.readInteger(as: Int64.self),
            let grace = buffer.readInteger(as: Int64.self),
            let status = buffer.readInteger(as: UInt16.self)
        else { return .corrupt }
        let headerBlock: ByteBuffer
        if version == 1 {
            guard let headerCount = buffer.readInteger(as: UInt16.self) else { return .corrupt }
            var headers: [(name: String, value: String)] = []
            headers.reserveCapacity(Int(headerCount))
            for _ in 0..<headerCount {
                guard let name = readString(lengthAs: UInt16.self, from: &buffer),
                    let value = readString(lengthAs: UInt32.self, from: &buffer)
                else { return .corrupt }
                headers.append((name, value))
            }
            headerBlock = ResponseWire.headerBlock(headers)
        } else {
            guard let length = buffer.readInteger(as: UInt32.self), let block = buffer.readSlice(length: Int(length)),
                ResponseWire.isValidHeaderBlock(block)
            else { return .corrupt }
            headerBlock = block
        }
        guard let tagCount = buffer.readInteger(as: UInt16.self) else { return .corrupt }
        var tags: [String] = []
        tags.reserveCapacity(Int(tagCount))
        for _ in 0..<tagCount {
            guard let tag = readString(lengthAs: UInt16.self, from: &buffer) else { return .corrupt }
            tags.append(tag)
        }
        guard let extensionCount = buffer.readInteger(as: UInt16.self) else { return .corrupt }
        for _ in 0..<extensionCount {
            guard let _ = buffer.readInteger(as: UInt16.self), let length = buffer.readInteger(as: UInt32.self),
                buffer.readSlice(length: Int(length)) != nil
            else { return .corrupt }
        }
        guard let bodyLength = buffer.readInteger(as: UInt32.self), let body = buffer.readSlice(length: Int(bodyLength)),
            buffer.readableBytes == 0
        else { return .corrupt }
        return .entry(
            CacheEntry(
                status: Int(status), headerBlock: headerBlock, body: body, storedAt: storedAt, ttl: ttl, grace: grace, tags: tags,
                invalidated: flags & 1 != 0))
    }

    private static func writeString<Length: FixedWidthInteger>(_ string: String, lengthAs: Length.Type, into buffer: inout ByteBuffer) {
        let bytes = string.utf8.prefix(Int(Length.max))
        buffer.writeInteger(Length(bytes.count))
        buffer.writeBytes(bytes)
    }

    private static func readString<Length: FixedWidthInteger>(lengthAs: Length.Type, from buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: Length.self) else { return nil }
        return buffer.readString(length: Int(length))
    }
}
