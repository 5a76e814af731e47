import Crypto
import NIOCore

/// The identity of a cached response. Two requests share an entry only if every part is equal:
///
/// - the **method** (a HEAD is looked up as the GET it mirrors),
/// - the **Host** header, lower-cased,
/// - the **path**, exactly as sent (no query),
/// - the route's **query parameters**, normalized by ``QueryString`` (decoded, sorted),
/// - a **SHA-256 of the request body** whenever the body is non-empty (POST, and GET with a body),
/// - the values of the route's **vary** headers (absent and empty are different).
///
/// Everything is length-prefixed before hashing, so no choice of values can make two different
/// requests collide by concatenation. The Redis key is `prefix + "v2:" + hex(SHA-256)`; the
/// version tag changes whenever this layout or the index kept next to entries does (v2: the tag
/// index of ``CacheIndexScripts``, and sorted query names). The stored entry has its own
/// version byte (``CacheEntryCodec/version``).
///
/// Immutable, and a class: a key travels through the request's states and actions, and copying
/// a struct of seven strings and arrays retained each of them every time.
public final class CacheKey: Sendable, Hashable {
    /// The method the entry is stored under (`GET` for a HEAD request).
    public let method: String
    /// Lower-cased Host header, or empty when the request had none.
    public let host: String
    /// The path, without the query.
    public let path: String
    /// The normalized query parameters that enter the key.
    public let query: [QueryString.Parameter]
    /// Hex SHA-256 of the request body, or nil for an empty body.
    public let bodyDigest: String?
    /// `(lower-cased name, value)` for each of the route's vary headers; nil value when absent.
    public let vary: [VaryValue]

    /// One vary header's contribution to the key.
    public struct VaryValue: Sendable, Hashable {
        /// Lower-cased header name.
        public let name: String
        /// The request's values joined by ", ", or nil when the header was absent.
        public let value: String?
    }

    /// The version tag in every Redis key; bump with any change to the key layout or entry format.
    public static let versionTag = "v2:"

    /// Creates a key from its parts.
    public init(method: String, host: String, path: String, query: [QueryString.Parameter], bodyDigest: String?, vary: [VaryValue]) {
        self.method = method
        self.host = host.lowercased()
        self.path = path
        self.query = query
        self.bodyDigest = bodyDigest
        self.vary = vary
        self.digest = Self.computeDigest(method: method, host: self.host, path: path, query: query, bodyDigest: bodyDigest, vary: vary)
    }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs === rhs
            || (lhs.digest == rhs.digest && lhs.method == rhs.method && lhs.host == rhs.host && lhs.path == rhs.path
                && lhs.query == rhs.query && lhs.bodyDigest == rhs.bodyDigest && lhs.vary == rhs.vary)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
    }

    /// Hex SHA-256 of `body`, or nil when it is empty.
    public static func digest(ofBody body: ByteBuffer) -> String? {
        guard body.readableBytes > 0 else { return nil }
        return body.withUnsafeReadableBytes { SHA256.hash(data: $0).hexString }
    }

    /// Hex SHA-256 of the canonical, length-prefixed encoding of every part.
    ///
    /// Computed once, when the key is made: a miss needs it for the lookup, the coalescing
    /// registry, the lease and the store.
    public let digest: String

    private static func computeDigest(
        method: String, host: String, path: String, query: [QueryString.Parameter], bodyDigest: String?, vary: [VaryValue]
    ) -> String {
        var hasher = SHA256()
        func field(_ bytes: UnsafeRawBufferPointer) {
            var length = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            hasher.update(bufferPointer: bytes)
        }
        func field(_ text: String) {
            var text = text
            text.withUTF8 { field(UnsafeRawBufferPointer($0)) }
        }
        func field(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { field($0) }
        }
        field("cache-proxy-key/1")
        field(method)
        field(host)
        field(path)
        field(String(query.count))
        for parameter in query {
            field(parameter.name)
            field(parameter.value)
        }
        field(bodyDigest ?? "-")
        field(String(vary.count))
        for header in vary {
            field(header.name)
            // "=" marks a present value, so a value can never look like "absent".
            field(header.value.map { "=" + $0 } ?? "absent")
        }
        return hasher.finalize().hexString
    }

    /// The Redis key: `prefix`, the version tag, then ``digest``.
    public func redisKey(prefix: String) -> String {
        prefix + Self.versionTag + digest
    }
}

extension SHA256Digest {
    /// Lower-case hexadecimal, written straight into the String's storage (one allocation; the
    /// generic version grew an array four times on every request's key).
    var hexString: String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count * 2) { output in
                for (index, byte) in bytes.enumerated() {
                    output[2 * index] = digits.utf8Start[Int(byte >> 4)]
                    output[2 * index + 1] = digits.utf8Start[Int(byte & 0x0f)]
                }
                return bytes.count * 2
            }
        }
    }
}

extension Sequence<UInt8> {
    /// Lower-case hexadecimal.
    var hexString: String {
        let digits: StaticString = "0123456789abcdef"
        var out: [UInt8] = []
        out.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            out.append(digits.utf8Start[Int(byte >> 4)])
            out.append(digits.utf8Start[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
