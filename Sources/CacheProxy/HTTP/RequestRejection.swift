import NIOHTTP1

/// Why the proxy refused a request without forwarding it. The connection is always closed after
/// the answer: a connection whose framing was in doubt is never reused (Varnish VSV00015).
public struct RequestRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// The class of problem; its raw value appears in `Cache-Status` (`detail=`) and the log.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        // The request line.
        case requestLineTooLong = "request-line-too-long"
        case badRequestLine = "bad-request-line"
        case badMethod = "bad-method"
        case badTarget = "bad-target"
        case fragmentInTarget = "fragment"
        case unsupportedVersion = "http-version"
        // The header section.
        case headersTooLarge = "headers-too-large"
        case tooManyHeaders = "too-many-headers"
        case bareLineFeed = "bare-lf"
        case bareCarriageReturn = "bare-cr"
        case obsFold = "obs-fold"
        case badHeaderName = "bad-header-name"
        case badHeaderValue = "bad-header-value"
        // Framing.
        case contentLengthWithTransferEncoding = "cl-and-te"
        case badContentLength = "bad-content-length"
        case conflictingContentLength = "conflicting-content-length"
        case unsupportedTransferEncoding = "transfer-encoding"
        case badChunk = "bad-chunk"
        // Meaning.
        case missingHost = "missing-host"
        case duplicateHost = "duplicate-host"
        case badHost = "bad-host"
        case hostMismatch = "host-mismatch"
        case connectMethod = "connect"
        case upgradeUnsupported = "upgrade"
        case expectationFailed = "expectation"
        /// A `PURGE` without the admin token.
        case unauthorized = "unauthorized"
        // Time.
        case headerTimeout = "header-timeout"
        case bodyTimeout = "body-timeout"
    }

    /// What went wrong.
    public let reason: Reason
    /// A short human-readable explanation (logged; sent to the client as the error text).
    public let detail: String

    /// Creates a rejection.
    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }

    /// The status the client gets: 414 for a long request line, 431 for large or many headers,
    /// 505 for an HTTP version other than 1.0 and 1.1, 501 for CONNECT and protocol upgrades,
    /// 417 for an unknown expectation, 408 for a timeout, 401 for a `PURGE` without the token, else 400.
    public var status: HTTPResponseStatus {
        switch reason {
        case .requestLineTooLong: return .uriTooLong
        case .headersTooLarge, .tooManyHeaders: return .requestHeaderFieldsTooLarge
        case .unsupportedVersion: return .httpVersionNotSupported
        case .connectMethod, .upgradeUnsupported: return .notImplemented
        case .expectationFailed: return .expectationFailed
        case .headerTimeout, .bodyTimeout: return .requestTimeout
        case .unauthorized: return .unauthorized
        default: return .badRequest
        }
    }

    public var description: String { "\(status.code) \(reason.rawValue): \(detail)" }
}
