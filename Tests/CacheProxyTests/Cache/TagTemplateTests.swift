import NIOCore
import Testing
@testable import CacheProxy

/// ``TagTemplate`` parsing and ``TagValues`` filling: pure, no I/O.
@Suite struct TagTemplateTests {
    /// The tags `template` gives for a request (and optionally a response).
    static func render(
        _ template: String, path: String = "/", query: String = "", body: String? = nil, response: String? = nil
    ) throws -> [String] {
        let values = TagValues(
            path: Substring(path), query: Substring(query), requestBody: body.map { ByteBuffer(string: $0) },
            responseBody: response.map { ByteBuffer(string: $0) })
        return try TagTemplate(template).render(values)
    }

    // MARK: Parsing

    @Test func parsesLiteralsAndPlaceholdersInOrder() throws {
        let template = try TagTemplate("user:{body.profile.nick_name}/{query.page}-{path.2}:{response.*.order_id}")
        #expect(
            template.sources == [.body(["profile", "nick_name"]), .query("page"), .path(2), .response(["*", "order_id"])])
        #expect(template.description == "user:{body.profile.nick_name}/{query.page}-{path.2}:{response.*.order_id}")
        #expect(!template.isLiteral)
        #expect(template.literalPrefix == "user:")
    }

    @Test func aLiteralTemplateHasNoSources() throws {
        let template = try TagTemplate("show_all_user")
        #expect(template.isLiteral)
        #expect(template.sources.isEmpty)
        #expect(template.literalPrefix == "show_all_user")
        #expect(try Self.render("show_all_user") == ["show_all_user"])
    }

    @Test(arguments: [
        ("a{{b}}c", "a{b}c"),
        ("{{body.x}}", "{body.x}"),
        ("{{", "{"),
        ("}}", "}"),
        ("x}}{{y", "x}{y"),
    ])
    func doubledBracesAreLiteralBraces(template: String, tag: String) throws {
        let parsed = try TagTemplate(template)
        #expect(parsed.isLiteral)
        #expect(try Self.render(template) == [tag])
    }

    @Test func bracesNextToAPlaceholder() throws {
        #expect(try Self.render("{{{body.id}}}", body: #"{"id": 7}"#) == ["{7}"])
    }

    /// Each bad template is refused with a message that says what is wrong.
    @Test(arguments: [
        ("", "a tag must not be empty"),
        ("a}b", "unmatched \"}\""),
        ("}", "unmatched \"}\""),
        ("a{body.x", "unclosed \"{\""),
        ("{", "unclosed \"{\""),
        ("{}", "placeholder {} must be {body.field}, {query.name}, {path.N} or {response.field}"),
        ("{body}", "placeholder {body} must be"),
        ("{header.x}", "placeholder {header.x}: unknown source \"header\" (body, query, path or response)"),
        ("{Body.x}", "placeholder {Body.x}: unknown source \"Body\""),
        ("{path.0}", "placeholder {path.0}: expected {path.N} with N a segment number from 1"),
        ("{path.-1}", "placeholder {path.-1}: expected {path.N} with N a segment number from 1"),
        ("{path.x}", "placeholder {path.x}: expected {path.N} with N a segment number from 1"),
        ("{path.1.2}", "placeholder {path.1.2}: expected {path.N} with N a segment number from 1"),
        ("{query.a.b}", "placeholder {query.a.b}: a query parameter has no fields"),
        ("{body.}", "placeholder {body.} has an empty part"),
        ("{body.a..b}", "placeholder {body.a..b} has an empty part"),
        ("{body.{a}", "placeholder {body.{a} has an empty part"),
        ("user:\t{body.x}", "control characters are not allowed"),
        ("a\nb", "control characters are not allowed"),
        ("a\u{7f}", "control characters are not allowed"),
        ("a\u{0}", "control characters are not allowed"),
        (String(repeating: "a", count: 513), "longer than 512 bytes"),
        (String(repeating: "é", count: 257), "longer than 512 bytes"),
    ])
    func badTemplatesSayWhatIsWrong(template: String, message: String) {
        let error = #expect(throws: TagTemplateError.self) { try TagTemplate(template) }
        #expect(error?.description.hasPrefix(message) == true, "\(String(describing: error))")
    }

    @Test func exactly512BytesIsAllowed() throws {
        let text = String(repeating: "a", count: 512)
        #expect(try Self.render(text) == [text])
    }

    // MARK: Request body

    @Test(arguments: [
        ("user:{body.nick_name}", #"{"nick_name": "bob", "age": 3}"#, ["user:bob"]),
        ("user:{body.profile.nick_name}", #"{"profile": {"nick_name": "ann"}}"#, ["user:ann"]),
        ("n:{body.n}", #"{"n": 5}"#, ["n:5"]),
        ("n:{body.n}", #"{"n": 5.0}"#, ["n:5"]),
        ("n:{body.n}", #"{"n": 1.5}"#, ["n:1.5"]),
        ("n:{body.n}", #"{"n": -0}"#, ["n:0"]),
        ("n:{body.n}", #"{"n": 1e21}"#, ["n:1e+21"]),
        ("n:{body.n}", #"{"n": 1e-7}"#, ["n:1e-7"]),
        ("n:{body.n}", #"{"n": 100}"#, ["n:100"]),
        ("b:{body.b}", #"{"b": true}"#, ["b:true"]),
        ("b:{body.b}", #"{"b": false}"#, ["b:false"]),
        ("s:{body.s}", #"{"s": "caf\u00e9 \"x\""}"#, ["s:café \"x\""]),
        ("id:{body.*.id}", #"[{"id": 1}, {"id": "two"}, {"x": 3}, {"id": null}]"#, ["id:1", "id:two"]),
        ("id:{body.ids.*}", #"{"ids": [3, 1, 3, 2]}"#, ["id:3", "id:1", "id:2"]),
    ])
    func bodyFieldsFillTheTag(template: String, body: String, tags: [String]) throws {
        var values = TagValues(path: "/", query: "", requestBody: ByteBuffer(string: body))
        var rendered: [String] = []
        values.render([try TagTemplate(template)], into: &rendered)
        #expect(rendered == tags)
    }

    @Test(arguments: [
        #"{"other": "x"}"#,  // missing
        #"{"nick_name": null}"#,
        #"{"nick_name": {"a": 1}}"#,
        #"{"nick_name": ["a"]}"#,
        #"["nick_name"]"#,  // not an object
        "nick_name=bob",  // not JSON
        #"{"nick_name": "bob""#,  // truncated
        "",
    ])
    func aMissingOrUnusableBodyValueGivesNoTag(body: String) throws {
        #expect(try Self.render("user:{body.nick_name}", body: body) == [])
    }

    @Test func noBodyGivesNoBodyTagButLiteralsStillRender() throws {
        var values = TagValues(path: "/", query: "", requestBody: nil)
        var tags: [String] = []
        values.render([try TagTemplate("show_all_user"), try TagTemplate("user:{body.nick_name}")], into: &tags)
        #expect(tags == ["show_all_user"])
    }

    // MARK: Query

    @Test(arguments: [
        ("{query.id}", "id=42", ["42"]),
        ("u:{query.name}", "name=J%C3%BCrgen+M", ["u:Jürgen M"]),
        ("u:{query.name}", "a=1&name=x%26y&b=2", ["u:x&y"]),
        ("u:{query.q}", "q=2&q=1&q=2", ["u:2", "u:1", "u:2"]),
        ("u:{query.missing}", "id=1", []),
        ("u:{query.id}", "", []),
    ])
    func queryParametersFillTheTag(template: String, query: String, tags: [String]) throws {
        #expect(try Self.render(template, query: query) == tags)
    }

    @Test func repeatedQueryValuesGiveOneTagEachWithoutDuplicates() throws {
        var values = TagValues(path: "/", query: "q=2&q=1&q=2", requestBody: nil)
        var tags: [String] = []
        values.render([try TagTemplate("u:{query.q}")], into: &tags)
        #expect(tags == ["u:2", "u:1"])
    }

    // MARK: Path

    @Test(arguments: [
        ("{path.1}", "/items/42", ["items"]),
        ("item:{path.2}", "/items/42", ["item:42"]),
        ("item:{path.2}", "/items/42/", ["item:42"]),
        ("item:{path.2}", "/items/a%20b+c", ["item:a b+c"]),
        ("item:{path.2}", "/items/caf%C3%A9", ["item:café"]),
        ("item:{path.2}", "/items/a%2Fb", ["item:a/b"]),
        ("item:{path.3}", "/items/42", []),
        ("item:{path.3}", "/items/42/", []),  // the empty segment after a trailing slash
        ("item:{path.2}", "/items//x", []),
        ("item:{path.3}", "/items//x", ["item:x"]),
    ])
    func pathSegmentsFillTheTag(template: String, path: String, tags: [String]) throws {
        #expect(try Self.render(template, path: path) == tags)
    }

    // MARK: Response body

    @Test func responseFieldsFillTheTagForEveryArrayElement() throws {
        let response = #"[{"order_id": 7}, {"order_id": 8}, {"order_id": 7}, {"note": "none"}, {"order_id": 1.25}]"#
        #expect(try Self.render("order:{response.*.order_id}", response: response) == ["order:7", "order:8", "order:7", "order:1.25"])
        var values = TagValues(path: "/", query: "", requestBody: nil, responseBody: ByteBuffer(string: response))
        var tags: [String] = []
        values.render([try TagTemplate("order:{response.*.order_id}")], into: &tags)
        #expect(tags == ["order:7", "order:8", "order:1.25"])
    }

    @Test func responseAndRequestBodiesAreSeparate() throws {
        let values = TagValues(
            path: "/", query: "", requestBody: ByteBuffer(string: #"{"id": "req"}"#), responseBody: ByteBuffer(string: #"{"id": "resp"}"#))
        #expect(try TagTemplate("{body.id}").render(values) == ["req"])
        #expect(try TagTemplate("{response.id}").render(values) == ["resp"])
        let noResponse = TagValues(path: "/", query: "", requestBody: ByteBuffer(string: #"{"id": "req"}"#))
        #expect(try TagTemplate("{response.id}").render(noResponse) == [])
    }

    @Test func aParsedRequestBodyIsUsedAsIs() throws {
        var values = TagValues(path: "/", query: "", requestJSON: .object(["nick_name": .string("zoe")]))
        var tags: [String] = []
        values.render([try TagTemplate("user:{body.nick_name}")], into: &tags)
        #expect(tags == ["user:zoe"])
    }

    // MARK: Combining

    @Test func severalPlaceholdersCombineEveryValue() throws {
        let tags = try Self.render("{path.1}:{query.q}:{body.*}", path: "/a/b", query: "q=x&q=y", body: "[1, 2]")
        #expect(tags == ["a:x:1", "a:x:2", "a:y:1", "a:y:2"])
    }

    @Test func oneMissingPlaceholderDropsTheWholeTag() throws {
        #expect(try Self.render("{path.1}:{query.q}", path: "/a") == [])
    }

    @Test func renderKeepsExistingTagsAndSkipsDuplicates() throws {
        var values = TagValues(path: "/users/5", query: "", requestBody: ByteBuffer(string: #"{"id": 5}"#))
        var tags = ["route", "user:5"]
        values.render(
            [try TagTemplate("user:{path.2}"), try TagTemplate("user:{body.id}"), try TagTemplate("route"), try TagTemplate("x")],
            into: &tags)
        #expect(tags == ["route", "user:5", "x"])
    }

    @Test func aWildcardGivesAtMost1000Tags() throws {
        let body = "[" + (0..<1500).map(String.init).joined(separator: ",") + "]"
        let tags = try Self.render("n:{body.*}", body: body)
        #expect(tags.count == TagValues.maxTagsPerTemplate)
        #expect(tags.count == 1000)
        #expect(tags.first == "n:0")
        #expect(tags.last == "n:999")
    }

    @Test func twoWildcardsAreCappedTogether() throws {
        let list = "[" + (0..<40).map(String.init).joined(separator: ",") + "]"
        let tags = try Self.render("{body.a.*}-{body.b.*}", body: "{\"a\": \(list), \"b\": \(list)}")
        #expect(tags.count == 1000)
        #expect(tags[0] == "0-0")
        #expect(tags[999] == "24-39")
    }

    @Test func aFilledTagLongerThan512BytesIsDropped() throws {
        let long = String(repeating: "x", count: 600)
        let fits = String(repeating: "y", count: 508)
        let tags = try Self.render("tag:{body.*}", body: "[\"\(long)\", \"\(fits)\", \"ok\"]")
        #expect(tags == ["tag:\(fits)", "tag:ok"])
    }

    @Test func anEmptyFilledTagIsDropped() throws {
        #expect(try Self.render("{body.s}", body: #"{"s": ""}"#) == [])
    }
}

@Suite struct CacheIndexNameTests {
    /// URL names go into a lexically sorted set with a space before the digest: they must not
    /// contain spaces, and equal queries must give equal names.
    @Test func urlNamesAreNormalizedAndHaveNoSpaces() {
        func name(_ target: String) -> String {
            let parts = target.split(separator: "?", maxSplits: 1)
            return CacheIndexName.url(path: parts[0], query: QueryString.normalized(parts.count > 1 ? parts[1] : "", keeping: .all))
        }
        #expect(name("/a") == "/a")
        #expect(name("/a?b=2&a=1") == "/a?a=1&b=2")
        #expect(name("/a?a=%31&b=2") == name("/a?b=2&a=1"))
        #expect(name("/a?q=x+y&r=%20%0A") == "/a?q=x%20y&r=%20%0A")
        #expect(name("/a?é=ü") == "/a?%C3%A9=%C3%BC")
        #expect(!name("/a?q=a b c").contains(" "))
    }
}
