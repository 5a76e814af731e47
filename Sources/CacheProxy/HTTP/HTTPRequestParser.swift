import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A strict, incremental HTTP/1.1 request parser (RFC 9112) for the client side of the proxy.
///
/// It accepts exactly one reading of every message and refuses anything a more lenient server
/// behind the proxy could read differently: bare LF or CR, obs-fold, whitespace before a colon,
/// control characters in values, `Content-Length` together with `Transfer-Encoding`, differing
/// `Content-Length`s, any transfer coding but a single `chunked`, malformed chunk lines. Limits on
/// the request line (414) and on header bytes and count (431) are checked as bytes arrive, so an
/// over-long head is refused without being buffered whole.
///
/// Pure: it reads from the buffer it is given, consuming what it returns, and does no I/O. The
/// method and target are kept byte for byte (`M-SEARCH` stays `M-SEARCH`).
///
/// (NIO's `HTTPRequestDecoder` is not used on this side: it cannot tell a long request line from
/// large headers, rewrites `M-SEARCH` as `MSEARCH`, refuses extension methods that llhttp does
/// not list, and gives no access to the bytes it accepted.)
struct HTTPRequestParser {
    /// Size limits of a request head.
    struct Limits: Sendable, Hashable {
        /// Longest request line (method, target, version), in bytes. Past it: 414. Default 8 KiB.
        var maxRequestLineBytes: Int = 8 << 10
        /// Most bytes of header lines (or of trailer lines) per request. Past it: 431. Default 32 KiB.
        var maxHeaderBytes: Int = 32 << 10
        /// Most header fields (or trailer fields) per request. Past it: 431. Default 100.
        var maxHeaderCount: Int = 100
    }

    /// How the request's body is delimited.
    enum Framing: Sendable, Hashable {
        case none
        case length(Int)
        case chunked
    }

    /// A request head as received: nothing normalized yet except the framing decision.
    struct Head: Sendable {
        /// The method, byte for byte.
        var method: String
        /// The request target, byte for byte (bytes above 0x7F are kept as Latin-1 scalars).
        var target: String
        var version: HTTPVersion
        var headers: HTTPHeaders
        var framing: Framing
    }

    enum Event {
        case head(Head)
        case body(ByteBuffer)
        case end
        case needMoreData
    }

    private enum State {
        /// Looking for the end of a head; the scan resumes where it stopped.
        case head(HeadScan)
        case lengthBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(HeadScan)
        case endPending
        case failed(RequestRejection)
    }

    /// Progress of a scan over a head (or trailer section) not yet complete.
    private struct HeadScan {
        /// Offset (from the reader index) where the current line starts.
        var lineStart = 0
        /// Line ranges found so far: `(start, end)` without the CRLF.
        var lines: [(start: Int, end: Int)] = []
        /// Bytes of header lines so far (the request line excluded).
        var headerBytes = 0
        /// Empty lines skipped before the request line.
        var leadingEmptyLines = 0
    }

    let limits: Limits
    private var state = State.head(HeadScan())

    /// Longest chunk-size line, extensions included.
    static let maxChunkLineBytes = 4096

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether a head is partly received (some bytes of it, not all).
    func hasPartialHead(_ buffer: ByteBuffer) -> Bool {
        if case .head = state { return buffer.readableBytes > 0 }
        return false
    }

    /// Parses the next event from `buffer`, consuming the bytes it covers. After an error every
    /// call throws the same error.
    mutating func next(_ buffer: inout ByteBuffer) throws(RequestRejection) -> Event {
        switch state {
        case .failed(let rejection):
            throw rejection
        case .head(var scan):
            state = .endPending  // placeholder while `scan` is mutated
            do {
                guard let head = try scanHead(&buffer, &scan) else {
                    state = .head(scan)
                    return .needMoreData
                }
                switch head.framing {
                case .none, .length(0): state = .endPending
                case .length(let length): state = .lengthBody(remaining: length)
                case .chunked: state = .chunkSize
                }
                return .head(head)
            } catch {
                state = .failed(error)
                throw error
            }
        case .lengthBody(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
            state = remaining == slice.readableBytes ? .endPending : .lengthBody(remaining: remaining - slice.readableBytes)
            return .body(slice)
        case .chunkSize:
            do {
                guard let size = try scanChunkSize(&buffer) else { return .needMoreData }
                state = size == 0 ? .trailers(HeadScan()) : .chunkData(remaining: size)
            } catch {
                state = .failed(error)
                throw error
            }
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            let slice = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
            state = remaining == slice.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - slice.readableBytes)
            return .body(slice)
        case .chunkDataEnd:
            guard buffer.readableBytes >= 2 else {
                if buffer.readableBytes == 1, buffer.readableBytesView.first != UInt8(ascii: "\r") {
                    return try fail(RequestRejection(.badChunk, "chunk data is not followed by CRLF"))
                }
                return .needMoreData
            }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                return try fail(RequestRejection(.badChunk, "chunk data is not followed by CRLF"))
            }
            state = .chunkSize
            return try next(&buffer)
        case .trailers(var scan):
            state = .endPending
            do {
                guard try scanTrailers(&buffer, &scan) else {
                    state = .trailers(scan)
                    return .needMoreData
                }
            } catch {
                state = .failed(error)
                throw error
            }
            state = .head(HeadScan())
            return .end
        case .endPending:
            state = .head(HeadScan())
            return .end
        }
    }

    private mutating func fail(_ rejection: RequestRejection) throws(RequestRejection) -> Event {
        state = .failed(rejection)
        throw rejection
    }

    // MARK: Heads

    /// Finds the lines of a head; nil until the empty line that ends it has arrived.
    private func scanHead(_ buffer: inout ByteBuffer, _ scan: inout HeadScan) throws(RequestRejection) -> Head? {
        let complete = try buffer.withUnsafeReadableBytes { bytes throws(RequestRejection) -> Bool in
            while true {
                let isRequestLine = scan.lines.isEmpty
                guard let lf = Self.findLineFeed(bytes, from: scan.lineStart) else {
                    let partial = bytes.count - scan.lineStart
                    if isRequestLine, partial > limits.maxRequestLineBytes {
                        throw RequestRejection(.requestLineTooLong, "the request line is longer than \(limits.maxRequestLineBytes) bytes")
                    }
                    if !isRequestLine, scan.headerBytes + partial > limits.maxHeaderBytes {
                        throw RequestRejection(.headersTooLarge, "the header section is larger than \(limits.maxHeaderBytes) bytes")
                    }
                    return false
                }
                let end = try Self.lineEnd(bytes, start: scan.lineStart, lf: lf)
                let length = end - scan.lineStart
                defer { scan.lineStart = lf + 1 }
                if isRequestLine {
                    if length == 0 {
                        // RFC 9112 §2.2: empty lines before the request line are ignored (a few).
                        scan.leadingEmptyLines += 1
                        if scan.leadingEmptyLines > 8 { throw RequestRejection(.badRequestLine, "too many empty lines") }
                        continue
                    }
                    if length > limits.maxRequestLineBytes {
                        throw RequestRejection(.requestLineTooLong, "the request line is longer than \(limits.maxRequestLineBytes) bytes")
                    }
                    scan.lines.append((scan.lineStart, end))
                    continue
                }
                if length == 0 { return true }
                scan.headerBytes += length + 2
                if scan.headerBytes > limits.maxHeaderBytes {
                    throw RequestRejection(.headersTooLarge, "the header section is larger than \(limits.maxHeaderBytes) bytes")
                }
                if scan.lines.count > limits.maxHeaderCount {
                    throw RequestRejection(.tooManyHeaders, "more than \(limits.maxHeaderCount) header fields")
                }
                scan.lines.append((scan.lineStart, end))
            }
        }
        guard complete else { return nil }
        let head = try buffer.withUnsafeReadableBytes { bytes throws(RequestRejection) -> Head in
            let requestLine = scan.lines[0]
            let (method, target, version) = try Self.parseRequestLine(
                UnsafeRawBufferPointer(rebasing: bytes[requestLine.start..<requestLine.end]))
            var fields: [(String, String)] = []
            fields.reserveCapacity(scan.lines.count - 1)
            for line in scan.lines.dropFirst() {
                fields.append(try Self.parseField(UnsafeRawBufferPointer(rebasing: bytes[line.start..<line.end])))
            }
            let headers = HTTPHeaders(fields)
            return Head(method: method, target: target, version: version, headers: headers, framing: try Self.framing(headers, version))
        }
        buffer.moveReaderIndex(forwardBy: scan.lineStart)
        return head
    }

    /// Reads a trailer section (validated like headers, then dropped); false until it is complete.
    private func scanTrailers(_ buffer: inout ByteBuffer, _ scan: inout HeadScan) throws(RequestRejection) -> Bool {
        let complete = try buffer.withUnsafeReadableBytes { bytes throws(RequestRejection) -> Bool in
            while true {
                guard let lf = Self.findLineFeed(bytes, from: scan.lineStart) else {
                    if scan.headerBytes + bytes.count - scan.lineStart > limits.maxHeaderBytes {
                        throw RequestRejection(.headersTooLarge, "the trailer section is larger than \(limits.maxHeaderBytes) bytes")
                    }
                    return false
                }
                let end = try Self.lineEnd(bytes, start: scan.lineStart, lf: lf)
                defer { scan.lineStart = lf + 1 }
                if end == scan.lineStart { return true }
                scan.headerBytes += end - scan.lineStart + 2
                if scan.headerBytes > limits.maxHeaderBytes {
                    throw RequestRejection(.headersTooLarge, "the trailer section is larger than \(limits.maxHeaderBytes) bytes")
                }
                scan.lines.append((scan.lineStart, end))
                if scan.lines.count > limits.maxHeaderCount {
                    throw RequestRejection(.tooManyHeaders, "more than \(limits.maxHeaderCount) trailer fields")
                }
                _ = try Self.parseField(UnsafeRawBufferPointer(rebasing: bytes[scan.lineStart..<end]))
            }
        }
        if complete { buffer.moveReaderIndex(forwardBy: scan.lineStart) }
        return complete
    }

    /// The size of the next chunk, consuming its line; nil until the whole line has arrived.
    private func scanChunkSize(_ buffer: inout ByteBuffer) throws(RequestRejection) -> Int? {
        let result = try buffer.withUnsafeReadableBytes { bytes throws(RequestRejection) -> (size: Int, consumed: Int)? in
            guard let lf = Self.findLineFeed(bytes, from: 0) else {
                if bytes.count > Self.maxChunkLineBytes {
                    throw RequestRejection(.badChunk, "chunk size line longer than \(Self.maxChunkLineBytes) bytes")
                }
                // Fail early on a byte that can never start a valid line.
                if let first = bytes.first, UInt8.hexDigitValue(first) == nil {
                    throw RequestRejection(.badChunk, "chunk size is not hexadecimal")
                }
                return nil
            }
            let end = try Self.lineEnd(bytes, start: 0, lf: lf)
            var size = 0
            var index = 0
            while index < end, let digit = UInt8.hexDigitValue(bytes[index]) {
                guard index < 15 else { throw RequestRejection(.badChunk, "chunk size too large") }
                size = size << 4 | Int(digit)
                index += 1
            }
            guard index > 0 else { throw RequestRejection(.badChunk, "chunk size is not hexadecimal") }
            if index < end {
                try Self.validateChunkExtensions(UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
            }
            return (size, lf + 1)
        }
        guard let result else { return nil }
        buffer.moveReaderIndex(forwardBy: result.consumed)
        return result.size
    }

    /// `*( ";" token [ "=" ( token / quoted-string ) ] )` exactly (RFC 9112 §7.1.1, without the
    /// optional whitespace): an unterminated quote or a stray byte is refused, so no other
    /// parser can read the line differently.
    static func validateChunkExtensions(_ bytes: UnsafeRawBufferPointer) throws(RequestRejection) {
        var index = 0
        func fail(_ detail: String) -> RequestRejection { RequestRejection(.badChunk, detail) }
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: ";") else { throw fail("unexpected byte after the chunk size") }
            index += 1
            let nameStart = index
            while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
            guard index > nameStart else { throw fail("a chunk extension without a name") }
            guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { continue }
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                var closed = false
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") {
                        closed = true
                        index += 1
                        break
                    } else if byte == UInt8(ascii: "\\") {
                        guard index + 1 < bytes.count, isFieldValueByte(bytes[index + 1]) else {
                            throw fail("bad quoted pair in a chunk extension")
                        }
                        index += 2
                    } else if isFieldValueByte(byte) {
                        index += 1
                    } else {
                        throw fail("control character in a chunk extension")
                    }
                }
                guard closed else { throw fail("unterminated quoted string in a chunk extension") }
            } else {
                let valueStart = index
                while index < bytes.count, isTokenByte(bytes[index]) { index += 1 }
                guard index > valueStart else { throw fail("a chunk extension with an empty value") }
            }
        }
    }

    /// The offset of the first LF at or after `from`.
    private static func findLineFeed(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + from, 0x0A, bytes.count - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// The end of the line that `lf` terminates (before its CR); rejects a bare LF or a CR inside the line.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, start: Int, lf: Int) throws(RequestRejection) -> Int {
        guard lf > start, bytes[lf - 1] == 0x0D else {
            throw RequestRejection(.bareLineFeed, "a line ends with LF but no CR")
        }
        let end = lf - 1
        if let base = bytes.baseAddress, end > start, memchr(base + start, 0x0D, end - start) != nil {
            throw RequestRejection(.bareCarriageReturn, "a CR that does not end a line")
        }
        return end
    }

    // MARK: Lines

    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(RequestRejection) -> (String, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: 0x20) else {
            throw RequestRejection(.badRequestLine, "the request line is not METHOD SP TARGET SP VERSION")
        }
        let method = line[..<firstSpace]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else {
            throw RequestRejection(.badMethod, "the method is not a token")
        }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: 0x20) else {
            throw RequestRejection(.badRequestLine, "the request line is not METHOD SP TARGET SP VERSION")
        }
        let target = line[(firstSpace + 1)..<secondSpace]
        guard !target.isEmpty else { throw RequestRejection(.badRequestLine, "empty request target (two spaces?)") }
        for byte in target where byte <= 0x20 || byte == 0x7F {
            throw RequestRejection(.badTarget, "control character or space in the request target")
        }
        let versionBytes = line[(secondSpace + 1)...]
        guard versionBytes.count == 8, versionBytes.starts(with: "HTTP/".utf8),
            let major = digit(versionBytes[versionBytes.startIndex + 5]),
            versionBytes[versionBytes.startIndex + 6] == UInt8(ascii: "."),
            let minor = digit(versionBytes[versionBytes.startIndex + 7])
        else {
            throw RequestRejection(.badRequestLine, "the request line does not end in HTTP/1.1 or HTTP/1.0")
        }
        guard major == 1, minor <= 1 else {
            throw RequestRejection(.unsupportedVersion, "HTTP/\(major).\(minor) is not supported; use HTTP/1.1")
        }
        return (
            String(decoding: method, as: UTF8.self),
            // Latin-1, so every byte survives; bytes above 0x7F are percent-encoded later.
            target.allSatisfy { $0 < 0x80 }
                ? String(decoding: target, as: UTF8.self) : String(String.UnicodeScalarView(target.map { Unicode.Scalar($0) })),
            HTTPVersion(major: major, minor: minor)
        )
    }

    private static func parseField(_ line: UnsafeRawBufferPointer) throws(RequestRejection) -> (String, String) {
        guard let first = line.first else { throw RequestRejection(.badHeaderName, "empty header line") }
        if first == 0x20 || first == 0x09 {
            throw RequestRejection(.obsFold, "a header line starts with whitespace (obs-fold)")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw RequestRejection(.badHeaderName, "a header line has no colon")
        }
        let name = line[..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else {
            throw RequestRejection(.badHeaderName, "a header name is empty or has characters outside token (whitespace before the colon?)")
        }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = line[start..<end]
        for byte in value where !isFieldValueByte(byte) {
            throw RequestRejection(.badHeaderValue, "control character in the value of \(String(decoding: name, as: UTF8.self))")
        }
        guard let text = String(validating: value, as: UTF8.self) else {
            throw RequestRejection(.badHeaderValue, "the value of \(String(decoding: name, as: UTF8.self)) is not UTF-8")
        }
        return (String(decoding: name, as: UTF8.self), text)
    }

    /// The body framing the headers declare (RFC 9112 §6), refusing every ambiguous case.
    static func framing(_ headers: HTTPHeaders, _ version: HTTPVersion) throws(RequestRejection) -> Framing {
        let codings = headers["transfer-encoding"]
        let lengths = headers["content-length"]
        if !codings.isEmpty {
            guard lengths.isEmpty else {
                throw RequestRejection(.contentLengthWithTransferEncoding, "Content-Length together with Transfer-Encoding")
            }
            guard version.minor >= 1 else {
                throw RequestRejection(.unsupportedTransferEncoding, "Transfer-Encoding in an HTTP/1.0 request")
            }
            guard codings.count == 1, codings[0].lowercased() == "chunked" else {
                throw RequestRejection(.unsupportedTransferEncoding, "only a single Transfer-Encoding: chunked is accepted")
            }
            return .chunked
        }
        var length: Int?
        for value in lengths {
            for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                let digits = item.utf8.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed().drop(while: { $0 == 0x20 || $0 == 0x09 })
                guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw RequestRejection(.badContentLength, "Content-Length is not a number")
                }
                let parsed = digits.reversed().reduce(0) { $0 * 10 + Int($1 - 0x30) }
                guard length == nil || length == parsed else {
                    throw RequestRejection(.conflictingContentLength, "differing Content-Length values")
                }
                length = parsed
            }
        }
        return length.map { .length($0) } ?? .none
    }

    // MARK: Characters

    static func isTokenByte(_ byte: UInt8) -> Bool {
        tokenTable[Int(byte)]
    }

    /// HTAB, SP, VCHAR and obs-text.
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= 0x30 && byte <= 0x39 ? Int(byte - 0x30) : nil
    }

    private static let tokenTable: [Bool] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(byte))
        }
    }
}
