/// A route's path: exact (`/user/show_all_user/`), one wildcard segment (`/order/*`), or any
/// rest (`/order/**`, which also matches `/order` and `/order/`).
///
/// Matching is on the raw request path without its query, segment by segment, case-sensitive.
public struct PathPattern: Sendable, Hashable, CustomStringConvertible {
    enum Segment: Sendable, Hashable {
        case literal(Substring)
        case any
    }

    /// The segments after the leading "/"; a trailing slash is a final empty literal.
    private let segments: [Segment]
    private let matchesRest: Bool
    /// The pattern as written.
    public let description: String

    /// Parses a pattern, throwing a message that says what is wrong.
    public init(_ text: String) throws(PathPatternError) {
        guard text.hasPrefix("/") else { throw PathPatternError("must start with \"/\"") }
        guard !text.contains("?"), !text.contains("#") else { throw PathPatternError("must not contain a query or fragment") }
        guard !text.contains(where: { $0 == " " || $0.isNewline }) else { throw PathPatternError("must not contain spaces") }
        var parts = text.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var matchesRest = false
        if parts.last == "**" {
            matchesRest = true
            parts.removeLast()
            // "/order/**" matches "/order" too: drop the empty part the slash before ** leaves.
            if parts.last == "" { parts.removeLast() }
        }
        var segments: [Segment] = []
        for (index, part) in parts.enumerated() {
            if part == "**" { throw PathPatternError("\"**\" is only allowed as the last segment") }
            if part == "*" {
                segments.append(.any)
            } else if part.contains("*") {
                throw PathPatternError("\"*\" must be a whole segment (\"/a/*/b\"), not part of one (\"\(part)\")")
            } else if part.isEmpty && index != parts.count - 1 {
                throw PathPatternError("empty segment (\"//\")")
            } else {
                segments.append(.literal(part))
            }
        }
        self.segments = segments
        self.matchesRest = matchesRest
        self.description = text
    }

    /// How many segments the pattern fixes (a trailing slash counts as an empty last one).
    public var segmentCount: Int { segments.count }

    /// How many segments a matching path surely has (a trailing slash's empty one not counted).
    public var namedSegmentCount: Int {
        segments.count - (segments.last == .literal("") ? 1 : 0)
    }

    /// Whether a matching path can have a non-empty segment `number` (from 1).
    public func mayHaveSegment(_ number: Int) -> Bool {
        if matchesRest { return true }
        guard number >= 1, number <= segments.count else { return false }
        if case .literal(let text) = segments[number - 1] { return !text.isEmpty }
        return true
    }

    /// Whether `path` (without query) matches.
    public func matches(_ path: Substring) -> Bool {
        guard path.first == "/" else { return false }
        var rest = path.dropFirst()
        var index = 0
        while true {
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            let part = rest[..<end]
            if index == segments.count {
                return matchesRest
            }
            switch segments[index] {
            case .literal(let literal):
                guard part == literal else { return false }
            case .any:
                guard !part.isEmpty else { return false }
            }
            index += 1
            if end == rest.endIndex {
                return index == segments.count
            }
            rest = rest[rest.index(after: end)...]
        }
    }
}

/// Why a path pattern is invalid.
public struct PathPatternError: Error, Hashable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
