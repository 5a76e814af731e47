/// A cache tag as written in the config: literal text with placeholders filled from the
/// request (and, for a route's tags, from the response), e.g. `user:{body.nick_name}`.
///
/// | placeholder            | value                                                            |
/// |------------------------|------------------------------------------------------------------|
/// | `{body.a.b}`           | field `a.b` of the request's JSON body                           |
/// | `{query.name}`         | query parameter `name`, decoded (every value if repeated)        |
/// | `{path.N}`             | the N-th path segment, from 1, decoded (`/items/42`: `{path.2}` = `42`) |
/// | `{response.a}`         | field `a` of the response's JSON body (route tags only)          |
///
/// A `*` component takes every element of an array (`{response.*.order_id}`: the `order_id` of
/// each element of a top-level array), so one template can give several tags. A JSON string
/// is used as is, a number in its RFC 8785 form (`5`, `1.5`), `true`/`false` as words; null,
/// objects, arrays and missing values give no tag. `{{` and `}}` are literal braces.
public struct TagTemplate: Sendable, Hashable, CustomStringConvertible {
    /// Where a placeholder's value comes from.
    public enum Source: Sendable, Hashable {
        case body([String])
        case query(String)
        case path(Int)
        case response([String])
    }

    enum Part: Sendable, Hashable {
        case literal(String)
        case placeholder(Source)
    }

    let parts: [Part]
    /// The template as written.
    public let description: String

    /// Longest tag, in bytes, after filling; longer values give no tag.
    public static let maxTagBytes = 512

    /// Parses a template; the error says what is wrong.
    public init(_ text: String) throws(TagTemplateError) {
        guard !text.isEmpty else { throw TagTemplateError("a tag must not be empty") }
        guard text.utf8.count <= Self.maxTagBytes else { throw TagTemplateError("longer than \(Self.maxTagBytes) bytes") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw TagTemplateError("control characters are not allowed")
        }
        var parts: [Part] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "}" {
                guard next < text.endIndex, text[next] == "}" else { throw TagTemplateError("unmatched \"}\" (write \"}}\" for a brace)") }
                literal.append("}")
                index = text.index(after: next)
            } else if character == "{" {
                if next < text.endIndex, text[next] == "{" {
                    literal.append("{")
                    index = text.index(after: next)
                    continue
                }
                guard let close = text[next...].firstIndex(of: "}") else { throw TagTemplateError("unclosed \"{\"") }
                if !literal.isEmpty { parts.append(.literal(literal)) }
                literal = ""
                parts.append(.placeholder(try Self.source(text[next..<close])))
                index = text.index(after: close)
            } else {
                literal.append(character)
                index = next
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
        self.description = text
    }

    private static func source(_ text: Substring) throws(TagTemplateError) -> Source {
        let components = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let kind = components.first, components.count >= 2 else {
            throw TagTemplateError("placeholder {\(text)} must be {body.field}, {query.name}, {path.N} or {response.field}")
        }
        let rest = Array(components.dropFirst())
        guard rest.allSatisfy({ !$0.isEmpty && !$0.contains("{") }) else {
            throw TagTemplateError("placeholder {\(text)} has an empty part")
        }
        switch kind {
        case "body": return .body(rest)
        case "response": return .response(rest)
        case "query":
            guard rest.count == 1 else { throw TagTemplateError("placeholder {\(text)}: a query parameter has no fields") }
            return .query(rest[0])
        case "path":
            guard rest.count == 1, let number = Int(rest[0]), number >= 1 else {
                throw TagTemplateError("placeholder {\(text)}: expected {path.N} with N a segment number from 1")
            }
            return .path(number)
        default:
            throw TagTemplateError("placeholder {\(text)}: unknown source \"\(kind)\" (body, query, path or response)")
        }
    }

    /// Every placeholder's source.
    public var sources: [Source] {
        parts.compactMap { if case .placeholder(let source) = $0 { return source } else { return nil } }
    }

    /// Whether the template has no placeholders.
    public var isLiteral: Bool { sources.isEmpty }

    /// The literal text before the first placeholder (all of it for a literal template).
    public var literalPrefix: String {
        var prefix = ""
        for part in parts {
            guard case .literal(let text) = part else { break }
            prefix += text
        }
        return prefix
    }

    /// The tags this template gives for `values`: none when a placeholder has no value, several
    /// when one has several (at most ``TagValues/maxTagsPerTemplate``).
    func render(_ values: TagValues) -> [String] {
        var results = [""]
        for part in parts {
            switch part {
            case .literal(let text):
                for index in results.indices { results[index] += text }
            case .placeholder(let source):
                let fills = values.values(for: source)
                if fills.isEmpty { return [] }
                var next: [String] = []
                next.reserveCapacity(min(results.count * fills.count, TagValues.maxTagsPerTemplate))
                outer: for result in results {
                    for fill in fills {
                        if next.count == TagValues.maxTagsPerTemplate { break outer }
                        next.append(result + fill)
                    }
                }
                results = next
            }
        }
        return results.filter { !$0.isEmpty && $0.utf8.count <= Self.maxTagBytes }
    }
}

/// Why a tag template is invalid.
public struct TagTemplateError: Error, Hashable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What tag placeholders are filled from: the request's path, query and JSON body, and the
/// response's JSON body. Bodies are parsed on first use; one that is not JSON fills nothing.
struct TagValues {
    /// Most tags one template can give (a `*` over a long array).
    static let maxTagsPerTemplate = 1000

    let path: Substring
    let query: Substring
    private var requestBody: Body
    private var responseBody: Body

    private enum Body {
        case unparsed(ByteBuffer?)
        case parsed(JSONValue?)

        mutating func value() -> JSONValue? {
            switch self {
            case .parsed(let value): return value
            case .unparsed(let bytes):
                let value = bytes.flatMap { try? JSONValue.parse($0) }
                self = .parsed(value)
                return value
            }
        }
    }

    init(path: Substring, query: Substring, requestBody: ByteBuffer?, responseBody: ByteBuffer? = nil) {
        self.path = path
        self.query = query
        self.requestBody = .unparsed(requestBody)
        self.responseBody = .unparsed(responseBody)
    }

    init(path: Substring, query: Substring, requestJSON: JSONValue?, responseBody: ByteBuffer? = nil) {
        self.path = path
        self.query = query
        self.requestBody = .parsed(requestJSON)
        self.responseBody = .unparsed(responseBody)
    }

    func values(for source: TagTemplate.Source) -> [String] {
        var copy = self
        return copy.fill(source)
    }

    private mutating func fill(_ source: TagTemplate.Source) -> [String] {
        switch source {
        case .body(let fields):
            return requestBody.value()?.values(at: fields).compactMap(\.tagText) ?? []
        case .response(let fields):
            return responseBody.value()?.values(at: fields).compactMap(\.tagText) ?? []
        case .query(let name):
            let wanted = Array(name.utf8)
            return QueryString.normalized(query, keeping: .all).filter { $0.name == wanted }.map {
                String(decoding: $0.value, as: UTF8.self)
            }
        case .path(let number):
            let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
            guard number <= segments.count, !segments[number - 1].isEmpty else { return [] }
            return [String(decoding: QueryString.decode(segments[number - 1].utf8[...], plusIsSpace: false), as: UTF8.self)]
        }
    }

    /// Renders every template, in order, without duplicates.
    mutating func render(_ templates: [TagTemplate], into tags: inout [String]) {
        guard !templates.isEmpty else { return }
        // Parse each body once, not once per placeholder.
        if templates.contains(where: { $0.sources.contains { if case .body = $0 { return true } else { return false } } }) {
            _ = requestBody.value()
        }
        if templates.contains(where: { $0.sources.contains { if case .response = $0 { return true } else { return false } } }) {
            _ = responseBody.value()
        }
        var seen = Set(tags)
        for template in templates {
            for tag in template.render(self) where seen.insert(tag).inserted {
                tags.append(tag)
            }
        }
    }
}

import NIOCore
