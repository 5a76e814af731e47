import NIOCore
import NIOHTTP1
import Testing
@testable import CacheProxy

@Suite struct ResponseWireTests {
    private func bytes(_ write: (inout ByteBuffer) -> Void) -> String {
        var buffer = ByteBuffer()
        write(&buffer)
        return String(buffer: buffer)
    }

    @Test(arguments: [0, 1, 9, 10, 99, 100, 1234, 65_535, 1_000_000, Int(Int32.max)])
    func decimals(_ value: Int) {
        #expect(bytes { ResponseWire.writeDecimal(value, into: &$0) } == String(value))
    }

    @Test func negativeDecimalsAreZero() {
        #expect(bytes { ResponseWire.writeDecimal(-5, into: &$0) } == "0")
    }

    @Test(arguments: [1, 9, 10, 15, 16, 255, 256, 4096, 65_535, 1 << 20, 123_456_789])
    func chunkSizesInHex(_ size: Int) {
        #expect(bytes { ResponseWire.writeChunkHeader(size: size, into: &$0) } == String(size, radix: 16) + "\r\n")
    }

    @Test func headsAsNIOWritesThem() {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "x-multi", value: "a")
        headers.add(name: "x-multi", value: "b")
        let head = HTTPResponseHead(version: .http1_1, status: .notFound, headers: headers)
        #expect(
            bytes { ResponseWire.writeHead(head, into: &$0) }
                == "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nx-multi: a\r\nx-multi: b\r\n\r\n")
        let custom = HTTPResponseHead(version: .http1_0, status: .custom(code: 299, reasonPhrase: "Fine"))
        #expect(bytes { ResponseWire.writeHead(custom, into: &$0) } == "HTTP/1.0 299 Fine\r\n\r\n")
    }

    @Test func headerBlocksRoundTrip() {
        let headers = [("content-type", "text/plain; charset=utf-8"), ("x-empty", ""), ("x-colon", "a: b"), ("x-utf8", "olá")]
        let block = ResponseWire.headerBlock(headers)
        #expect(ResponseWire.parseHeaderBlock(block).map { "\($0.name)=\($0.value)" } == headers.map { "\($0.0)=\($0.1)" })
    }

    @Test func chunkedOnlyForHTTP11WithTransferEncodingChunked() {
        var headers = HTTPHeaders()
        headers.add(name: "transfer-encoding", value: "chunked")
        #expect(ResponseWire.isChunked(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        #expect(!ResponseWire.isChunked(HTTPResponseHead(version: .http1_0, status: .ok, headers: headers)))
        #expect(!ResponseWire.isChunked(HTTPResponseHead(version: .http1_1, status: .ok)))
    }

    @Test func storedBlocksAreValidatedBeforeTheyAreWritten() {
        #expect(ResponseWire.isValidHeaderBlock(ByteBuffer(string: "")))
        #expect(ResponseWire.isValidHeaderBlock(ByteBuffer(string: "a: b\r\nx-y:\r\n")))
        for forged in [
            "a: b\r\n\r\nHTTP/1.1 200 OK\r\n",  // an empty line would end the head
            "a: b\nset-cookie: x\r\n",  // bare LF
            "a: b\rc\r\n",  // bare CR
            "no colon\r\n", ": v\r\n", "a b: c\r\n", "a: b",  // not a header line, or cut
            "a: b\u{0}c\r\n",
        ] {
            #expect(!ResponseWire.isValidHeaderBlock(ByteBuffer(string: forged)), "\(forged.debugDescription)")
        }
    }
}
