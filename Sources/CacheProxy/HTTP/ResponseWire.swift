import NIOCore
import NIOHTTP1

/// HTTP/1.x response bytes, written by the proxy itself (no `HTTPResponseEncoder` in the
/// pipeline): a hit writes a stored, pre-serialized header block plus a few per-response lines,
/// and every other response goes through ``writeHead(_:into:)``. Framing is always decided by the
/// proxy (see ``ProxyResponses``); this only turns heads into bytes and frames chunked bodies.
enum ResponseWire {
    /// `HTTP/1.1 200 OK\r\n`.
    static func writeStatusLine(version: HTTPVersion, status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        if version.major == 1 && version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else if version.major == 1 && version.minor == 0 {
            buffer.writeStaticString("HTTP/1.0 ")
        } else {
            buffer.writeStaticString("HTTP/")
            writeDecimal(version.major, into: &buffer)
            buffer.writeStaticString(".")
            writeDecimal(version.minor, into: &buffer)
            buffer.writeStaticString(" ")
        }
        writeDecimal(Int(status.code), into: &buffer)
        buffer.writeStaticString(" ")
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }

    /// A whole head: status line, headers, empty line.
    static func writeHead(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        writeStatusLine(version: head.version, status: head.status, into: &buffer)
        for header in head.headers { writeHeader(header.name, header.value, into: &buffer) }
        buffer.writeStaticString("\r\n")
    }

    /// `name: value\r\n`.
    @inline(__always)
    static func writeHeader(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// The header lines of `headers`, as stored with an entry. A line that could split the
    /// head (a CR, LF or NUL in a value, a name that is not a token) is left out; the origin's
    /// parser never lets one through, so this only guards entries built by hand.
    static func headerBlock(_ headers: [(name: String, value: String)]) -> ByteBuffer {
        var size = 0
        for header in headers { size += header.name.utf8.count + header.value.utf8.count + 4 }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(size)
        for header in headers where isSafe(header.name, header.value) {
            writeHeader(header.name, header.value, into: &buffer)
        }
        return buffer
    }

    /// The (name, value) pairs of a header block written by ``headerBlock(_:)``.
    static func parseHeaderBlock(_ block: ByteBuffer) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        block.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            var index = 0
            while index + 1 < bytes.count {
                guard bytes[index] == UInt8(ascii: "\r"), bytes[index + 1] == UInt8(ascii: "\n") else {
                    index += 1
                    continue
                }
                let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index])
                if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
                    let name = String(decoding: UnsafeRawBufferPointer(rebasing: line[..<colon]), as: UTF8.self)
                    var valueStart = colon + 1
                    if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
                    let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart...]), as: UTF8.self)
                    headers.append((name, value))
                }
                index += 2
                lineStart = index
            }
        }
        return headers
    }

    /// Whether a stored block is header lines and nothing else, so writing it as it is cannot
    /// end the head early or add anything but headers: every line `token: value\r\n`, no CR,
    /// LF or NUL elsewhere, no empty line. (A value in Redis not written by this codec, or
    /// damaged, is refused at decode, not sent.)
    static func isValidHeaderBlock(_ block: ByteBuffer) -> Bool {
        block.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count {
                // The name: one or more token bytes, then a colon.
                let nameStart = index
                while index < bytes.count, HTTPRequestParser.isTokenByte(bytes[index]) { index += 1 }
                guard index > nameStart, index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                // The value, up to CRLF.
                while index < bytes.count, bytes[index] != UInt8(ascii: "\r") {
                    let byte = bytes[index]
                    guard byte != UInt8(ascii: "\n"), byte != 0 else { return false }
                    index += 1
                }
                guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") else { return false }
                index += 2
            }
            return true
        }
    }

    private static func isSafe(_ name: String, _ value: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPRequestParser.isTokenByte)
            && !value.utf8.contains(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") || $0 == 0 })
    }

    /// Whether body parts after this head are sent as chunks (what NIO's encoder decides with
    /// automatic framing off: HTTP/1.1 and `Transfer-Encoding: chunked`).
    static func isChunked(_ head: HTTPResponseHead) -> Bool {
        head.version.major == 1 && head.version.minor >= 1 && head.headers.first(name: "transfer-encoding") == "chunked"
    }

    /// `size-in-hex\r\n`.
    static func writeChunkHeader(size: Int, into buffer: inout ByteBuffer) {
        let digits: StaticString = "0123456789abcdef"
        var shift = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        while shift >= 0 {
            buffer.writeInteger(digits.utf8Start[(size >> shift) & 0xf])
            shift -= 4
        }
        buffer.writeStaticString("\r\n")
    }

    /// An integer in decimal (negative ones as 0), without making a String.
    static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        guard value > 0 else {
            buffer.writeInteger(UInt8(ascii: "0"))
            return
        }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
