import NIOCore
import Testing
@testable import CacheProxy

/// Parses `text` and returns its canonical form as a string.
private func canonical(_ text: String) throws -> String {
    String(decoding: CanonicalJSON.serialize(try JSONValue.parse(text.utf8)), as: UTF8.self)
}

/// The parse error for `bytes`, or nil when they parse.
private func parseError(_ bytes: [UInt8], maxDepth: Int = 64) -> JSONParseError? {
    do {
        _ = try JSONValue.parse(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

@Suite struct CanonicalJSONNumberTests {
    /// RFC 8785 Appendix B, Table 1, every row but NaN and Infinity (which JSON cannot hold).
    static let appendixB: [(UInt64, String)] = [
        (0x0000_0000_0000_0000, "0"),
        (0x8000_0000_0000_0000, "0"),
        (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"),
        (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
        (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
        (0x4340_0000_0000_0000, "9007199254740992"),
        (0xc340_0000_0000_0000, "-9007199254740992"),
        (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
        (0x44b5_2d02_c7e1_4af6, "1e+23"),
        (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
        (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
        (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
        (0x444b_1ae4_d6e2_ef50, "1e+21"),
        (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
        (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
        (0x41b3_de43_5555_5553, "333333333.3333332"),
        (0x41b3_de43_5555_5554, "333333333.33333325"),
        (0x41b3_de43_5555_5555, "333333333.3333333"),
        (0x41b3_de43_5555_5556, "333333333.3333334"),
        (0x41b3_de43_5555_5557, "333333333.33333343"),
        (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
        (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),  // exactly …206.25: ties go to even
    ]

    @Test(arguments: appendixB)
    func appendixBSamples(bits: UInt64, expected: String) throws {
        let value = Double(bitPattern: bits)
        #expect(CanonicalJSON.numberText(value) == expected)
        // The same through the parser and the serializer, except integer literals past 2^53,
        // which the parser refuses (see integersBeyondTwoToThe53AreRefused).
        if !expected.contains(where: { $0 == "." || $0 == "e" }), value.magnitude >= 9_007_199_254_740_992 {
            #expect(throws: JSONParseError.self) { try JSONValue.parse(expected.utf8) }
        } else {
            #expect(try canonical(expected) == expected)
        }
        #expect(CanonicalJSON.serialize(.number(value)) == Array(expected.utf8))
    }

    /// The boundaries of ECMAScript Number::toString's plain and exponent forms.
    static let layouts: [(Double, String)] = [
        (5, "5"), (-5, "-5"), (100, "100"), (1.5, "1.5"), (-0.5, "-0.5"), (0.1, "0.1"), (4.5, "4.5"),
        (1e20, "100000000000000000000"), (1.2345678901234568e20, "123456789012345680000"),
        (1e21, "1e+21"), (-1e21, "-1e+21"), (1.5e21, "1.5e+21"), (1e30, "1e+30"), (1.5e300, "1.5e+300"),
        (0.002, "0.002"), (0.000001, "0.000001"), (0.0000015, "0.0000015"), (-0.000001, "-0.000001"),
        (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (-1e-7, "-1e-7"), (1e-27, "1e-27"), (1.23e-18, "1.23e-18"),
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
    ]

    @Test(arguments: layouts)
    func ecmaScriptLayouts(value: Double, expected: String) {
        #expect(CanonicalJSON.numberText(value) == expected)
    }

    @Test func nonFiniteNumbers() {
        #expect(CanonicalJSON.numberText(.nan) == "NaN")
        #expect(CanonicalJSON.numberText(.infinity) == "Infinity")
        #expect(CanonicalJSON.numberText(-.infinity) == "-Infinity")
        // Only reachable from values built in code; written as JSON.stringify does.
        #expect(CanonicalJSON.serialize(.array([.number(.nan), .number(.infinity)])) == Array("[null,null]".utf8))
        #expect(JSONValue.number(.nan).tagText == nil)
    }

    /// Random doubles (any bit pattern, and spread over the plain-decimal ranges): the text reads
    /// back as the same double (through our parser too), and no shorter digit string does
    /// (checked on both (k−1)-digit neighbours of the k digits).
    @Test func randomDoublesRoundTripWithShortestDigits() throws {
        var random = SplitMix64(seed: 8785)
        for round in 0..<30_000 {
            let value: Double
            switch round % 3 {
            case 0: value = Double(bitPattern: random.next())
            case 1: value = Double.random(in: -1e22...1e22, using: &random)
            default: value = Double.random(in: -1e-5...1e-5, using: &random)
            }
            guard value.isFinite else { continue }
            let text = CanonicalJSON.numberText(value)
            #expect(Double(text) == value, "\(text)")
            if !text.contains(where: { $0 == "." || $0 == "e" }), value.magnitude >= 9_007_199_254_740_992 {
                // An integer literal that a Double cannot hold exactly: refused by the parser.
                #expect(throws: JSONParseError.self) { try JSONValue.parse(text.utf8) }
            } else {
                #expect(try JSONValue.parse(text.utf8) == .number(value), "\(text)")
            }

            // s × 10^e with s's last digit non-zero: drop that digit, rounding down and up.
            let mantissa = text.split(separator: "e")[0].filter { $0 != "-" }
            let fraction = mantissa.split(separator: ".", omittingEmptySubsequences: false).dropFirst().first ?? ""
            var exponent = (text.split(separator: "e").dropFirst().first).flatMap { Int($0) } ?? 0
            exponent -= fraction.count
            var digits = mantissa.filter { $0 != "." }
            while digits.hasSuffix("0") {
                digits.removeLast()
                exponent += 1
            }
            digits = String(digits.drop { $0 == "0" })
            guard digits.count > 1, let significand = UInt64(digits) else { continue }
            let sign = value < 0 ? "-" : ""
            for shorter in [significand / 10, significand / 10 + 1] {
                let candidate = "\(sign)\(shorter)e\(exponent + 1)"
                #expect(Double(candidate) != value, "\(text) is not the shortest: \(candidate) reads back the same")
            }
        }
    }
}

@Suite struct CanonicalJSONSerializationTests {
    /// RFC 8785 §3.2.2 input, §3.2.3 output and §3.2.4 bytes.
    @Test func rfcSampleObject() throws {
        let input = #"""
            {
              "numbers": [333333333.33333329, 1E30, 4.50,
                          2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        let expected =
            #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try canonical(input) == expected)
        let hex = """
            7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
            75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
            5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
            65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
            5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
            30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d
            """
        let bytes = hex.split(whereSeparator: \.isWhitespace).compactMap { UInt8($0, radix: 16) }
        #expect(CanonicalJSON.serialize(try JSONValue.parse(input.utf8)) == bytes)
    }

    /// RFC 8785 §3.2.3: names sort as UTF-16 code units, so 😀 (D83D DE00) sorts before דּ (FB33).
    @Test func rfcSortingSample() throws {
        let input = #"""
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """#
        let order = [
            "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign",
            "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh",
        ]
        #expect(try JSONValue.parse(input.utf8).values(at: ["*"]) == order.map { .string($0) })
        let expected =
            #"{"\r":"Carriage Return","1":"One","\#u{80}":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","#
            + #""😀":"Emoji: Grinning Face","דּ":"Hebrew Letter Dalet With Dagesh"}"#
        #expect(try canonical(input) == expected)
    }

    @Test func utf16OrderDiffersFromScalarOrder() {
        // U+E000 < U+1F600 as scalars (and as UTF-8), but 0xE000 > 0xD83D as UTF-16.
        let object = JSONValue.object(["\u{E000}": .number(1), "😀": .number(2), "z": .number(3)])
        #expect(String(decoding: CanonicalJSON.serialize(object), as: UTF8.self) == "{\"z\":3,\"😀\":2,\"\u{E000}\":1}")
    }

    @Test func stringEscapes() {
        let string = JSONValue.string("\"\\/\u{8}\u{9}\u{A}\u{C}\u{D}\u{0}\u{1}\u{B}\u{1F}\u{7F} é€😀\u{2028}")
        let expected = #""\"\\/\b\t\n\f\r\u0000\u0001\u000b\u001f"# + "\u{7F} é€😀\u{2028}\""
        #expect(CanonicalJSON.serialize(string) == Array(expected.utf8))
        #expect(CanonicalJSON.serialize(.string("")) == Array(#""""#.utf8))
    }

    @Test func unicodeEscapesBecomeLiteralUTF8() throws {
        #expect(try canonical(#""\u00e9\u20AC\ud83d\ude00\u002f\u0000""#) == "\"é€😀/\\u0000\"")
        #expect(try canonical(#""\uD834\uDD1E""#) == "\"𝄞\"")
        // Literal UTF-8 and escapes of the same scalars give the same bytes.
        #expect(try canonical(#"{"k":"é😀"}"#) == (try canonical(#"{"\u006b":"\u00E9\uD83D\uDE00"}"#)))
    }

    @Test func nestedStructures() throws {
        let input = #"{"b":[{"z":1,"a":[true,null,{"y":[],"x":{}}]},"x",[[[-0.0]]]],"a":{"d":{},"c":[]}}"#
        let expected = #"{"a":{"c":[],"d":{}},"b":[{"a":[true,null,{"x":{},"y":[]}],"z":1},"x",[[[0]]]]}"#
        #expect(try canonical(input) == expected)
        #expect(try canonical("[]") == "[]")
        #expect(try canonical("{}") == "{}")
        #expect(try canonical(" \"top\" ") == "\"top\"")
        #expect(try canonical("-12") == "-12")
    }

    @Test func spellingDoesNotMatter() throws {
        let compact = #"{"user":{"id":42,"tags":["a","b"]},"page":1.0}"#
        let spaced = "\r\n{ \"page\" :\t1 ,\n \"user\": { \"tags\" : [ \"a\" , \"\\u0062\" ], \"id\": 4.2E1 } }\n"
        #expect(try canonical(compact) == (try canonical(spaced)))
        #expect(try canonical(compact) == #"{"page":1,"user":{"id":42,"tags":["a","b"]}}"#)
        // Array order does matter.
        #expect(try canonical(#"[1,2]"#) != (try canonical(#"[2,1]"#)))
    }

    @Test func appendsToAnExistingBuffer() {
        var buffer = Array("prefix:".utf8)
        CanonicalJSON.serialize(.object(["b": .bool(false), "a": .null]), into: &buffer)
        #expect(buffer == Array(#"prefix:{"a":null,"b":false}"#.utf8))
    }
}

@Suite struct JSONValueParseTests {
    /// Two ids from 2^53 on can be the same Double: a body keyed on its canonical form would make them
    /// share an entry. Such integers are refused (the body is then forwarded uncached).
    @Test(arguments: [
        "12345678901234567890", "12345678901234567891", "9007199254740992", "9007199254740993", "-9007199254740993",
        "[1,{\"id\":99999999999999999}]",
    ])
    func integersBeyondTwoToThe53AreRefused(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text.utf8) }
    }

    @Test func scalarsAndContainers() throws {
        #expect(try JSONValue.parse("null".utf8) == .null)
        #expect(try JSONValue.parse(" true ".utf8) == .bool(true))
        #expect(try JSONValue.parse("false".utf8) == .bool(false))
        #expect(try JSONValue.parse("0".utf8) == .number(0))
        #expect(try JSONValue.parse("-1.25e+2".utf8) == .number(-125))
        #expect(try JSONValue.parse("1E-2".utf8) == .number(0.01))
        #expect(try JSONValue.parse("1.23456789012345678901234567890e29".utf8) == .number(1.2345678901234568e29))
        #expect(try JSONValue.parse("9007199254740991".utf8) == .number(9_007_199_254_740_991))
        #expect(try JSONValue.parse("1e-400".utf8) == .number(0))  // underflow rounds to zero
        #expect(try JSONValue.parse("\"a\\tb\"".utf8) == .string("a\tb"))
        #expect(try JSONValue.parse("[1,[2],{}]".utf8) == .array([.number(1), .array([.number(2)]), .object([:])]))
        #expect(try JSONValue.parse(#"{"a":{"b":null}}"#.utf8) == .object(["a": .object(["b": .null])]))
        let minusZero = try JSONValue.parse("-0".utf8)
        guard case .number(let zero) = minusZero else { Issue.record("not a number"); return }
        #expect(zero == 0 && zero.sign == .minus)
    }

    @Test func inputKinds() throws {
        let text = #"{"a":[1,"x"]}"#
        let expected = JSONValue.object(["a": .array([.number(1), .string("x")])])
        var buffer = ByteBuffer(string: "ignored" + text)
        buffer.moveReaderIndex(forwardBy: 7)
        #expect(try JSONValue.parse(buffer) == expected)
        #expect(buffer.readerIndex == 7)
        #expect(try JSONValue.parse(Array(text.utf8)) == expected)
        #expect(try JSONValue.parse(Array(text.utf8)[...]) == expected)
        #expect(try JSONValue.parse(text.utf8.lazy.map { $0 }) == expected)  // not contiguous: copied
        // Offsets count from the reader index.
        var bad = ByteBuffer(string: "xx[1,]")
        bad.moveReaderIndex(forwardBy: 2)
        do {
            _ = try JSONValue.parse(bad)
            Issue.record("parsed")
        } catch {
            #expect(error.offset == 3 && error.code == .unexpectedCharacter)
        }
    }

    @Test func errorsSayWhereAndWhy() throws {
        let duplicate = try #require(parseError(Array(#"{"a":1,"a":2}"#.utf8)))
        #expect(duplicate.code == .duplicateKey)
        #expect(duplicate.offset == 7)
        #expect(duplicate.description == #"invalid JSON at byte 7: duplicate member name "a""#)
        let leadingZero = try #require(parseError(Array("[1, 012]".utf8)))
        #expect(leadingZero.code == .invalidNumber && leadingZero.offset == 4)
        #expect(leadingZero.reason.contains("leading zeros"))
        #expect(parseError(Array("[1,]".utf8))?.offset == 3)
        #expect(parseError(Array("[1,".utf8))?.offset == 3)
    }

    @Test func depthLimit() {
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(parseError(Array(deepest.utf8)) == nil)
        let tooDeep = "[" + deepest + "]"
        #expect(parseError(Array(tooDeep.utf8))?.code == .tooDeep)
        #expect(parseError(Array(tooDeep.utf8), maxDepth: 65) == nil)
        #expect(parseError(Array("[]".utf8), maxDepth: 0)?.code == .tooDeep)
        #expect(parseError(Array("1".utf8), maxDepth: 0) == nil)
        let objects = String(repeating: #"{"a":"#, count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(parseError(Array(objects.utf8))?.code == .tooDeep)
        // Far beyond any stack: an error, never a crash, even with a huge limit.
        let hostile = Array(repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(parseError(hostile)?.code == .tooDeep)
        #expect(parseError(Array(hostile.prefix(200_000)), maxDepth: .max)?.code == .unexpectedEnd)
    }

    @Test func largeArraysAndObjects() throws {
        let count = 50_000
        let array = "[" + (0..<count).map(String.init).joined(separator: ",") + "]"
        #expect(try JSONValue.parse(array.utf8).values(at: ["*"]).count == count)
        let object = "{" + (0..<count).map { #""k\#($0)":\#($0)"# }.joined(separator: ",") + "}"
        guard case .object(let members) = try JSONValue.parse(object.utf8) else { Issue.record("not an object"); return }
        #expect(members.count == count && members["k49999"] == .number(49999))
    }
}

@Suite struct JSONValueRejectionTests {
    @Test(
        arguments: [
            [0x22, 0xC3, 0x22],  // truncated 2-byte sequence
            [0x22, 0x80, 0x22],  // lone continuation byte
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong 3-byte
            [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],  // overlong 4-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8-encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0xFF, 0x22],
            [0x22, 0xE2, 0x82, 0x22],  // truncated '€'
            [0x22, 0x5C, 0xFF, 0x22],  // after a backslash
            [0x5B, 0xFE, 0x5D],  // outside a string
            [0x31, 0x20, 0xC3],  // trailing
            [0x74, 0x72, 0xFF],  // inside a literal
        ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) {
        #expect(parseError(bytes)?.code == .invalidUTF8)
    }

    @Test(arguments: ["\"a\u{0}b\"", "\"\t\"", "\"line\nbreak\"", "\"\u{1F}\"", "{\"\r\":1}"])
    func unescapedControlCharacters(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .controlCharacter)
    }

    @Test(arguments: [#""\x""#, #""\'""#, #""\U0041""#, #""\u12""#, #""\u12G4""#, #""\0""#, #""\ ""#, #""\a""#])
    func badEscapes(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .invalidEscape)
    }

    @Test(arguments: [
        #""\ud800""#, #""\udc00""#, #""\ude00\ud83d""#, #""\ud83d\u0041""#, #""\ud83dx""#, #""\ud83d\ud83d""#,
        #""\uDBFF\n""#, #"{"\udfff":1}"#,
    ])
    func loneOrMisorderedSurrogates(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .invalidSurrogate)
    }

    @Test(arguments: [
        #"{"a":1,"a":2}"#, #"{"a":1,"\u0061":2}"#, #"{"x":{"b":[],"b":[]}}"#, #"[{"é":1,"\u00e9":2}]"#,
        #"{"😀":0,"\ud83d\ude00":0}"#,
    ])
    func duplicateKeys(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .duplicateKey)
    }

    @Test(arguments: [
        "01", "-01", "00", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1E-", "-", "--1", "0x10", "1.5.3", "1e5.5", "NaN", "Infinity",
        "-Infinity", "[1.]", "[-]", "{\"a\":+1}", "1f", "2a",
    ])
    func numbersOutsideTheGrammar(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .invalidNumber)
    }

    @Test(arguments: ["1e309", "-1e309", "1" + String(repeating: "0", count: 400), "[1.8e308]", "123e999999999999"])
    func numbersBeyondDouble(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .numberOutOfRange)
    }

    @Test(arguments: ["1 2", "{} x", "[]]", #""a""b""#, "true false", "1\u{0}", "null,", "{}{}"])
    func trailingGarbage(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .trailingData)
    }

    @Test(arguments: ["", " ", "\n\t\r "])
    func emptyInput(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .emptyInput)
    }

    @Test(arguments: ["[", "[1,", #"{"a":"#, #"{"a""#, #""abc"#, "tru", "nul", "{", #""\u00"#, #""\"#, #""\ud83d\u"#])
    func truncatedInput(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .unexpectedEnd)
    }

    @Test(arguments: [
        "[1,]", "{,}", #"{"a" 1}"#, "[1 2]", "{'a':1}", "{a:1}", "/*c*/1", "\u{FEFF}1", "\u{A0}1", "\u{C}1", "[1;2]",
        #"{"a":1,}"#, "trux", "[,1]", "]", ":", #"{"a":1 "b":2}"#, "[é]",
    ])
    func syntaxErrors(_ text: String) {
        #expect(parseError(Array(text.utf8))?.code == .unexpectedCharacter)
    }
}

@Suite struct JSONValueAccessTests {
    @Test func tagText() throws {
        #expect(JSONValue.string("alice").tagText == "alice")
        #expect(JSONValue.string("").tagText == "")
        #expect(JSONValue.number(5).tagText == "5")
        #expect(JSONValue.number(1.5).tagText == "1.5")
        #expect(JSONValue.number(-0.0).tagText == "0")
        #expect(JSONValue.number(1e21).tagText == "1e+21")
        #expect(try JSONValue.parse("5.0".utf8).tagText == "5")
        #expect(JSONValue.bool(true).tagText == "true")
        #expect(JSONValue.bool(false).tagText == "false")
        #expect(JSONValue.null.tagText == nil)
        #expect(JSONValue.array([.number(1)]).tagText == nil)
        #expect(JSONValue.object(["a": .number(1)]).tagText == nil)
    }

    @Test func valuesAtPaths() throws {
        let orders = try JSONValue.parse(#"[{"order_id":1},{"order_id":2},{"other":3},"x",{"order_id":{"n":4}}]"#.utf8)
        #expect(orders.values(at: ["*", "order_id"]) == [.number(1), .number(2), .object(["n": .number(4)])])
        #expect(orders.values(at: ["*", "order_id"]).compactMap(\.tagText) == ["1", "2"])
        #expect(orders.values(at: ["*", "order_id", "n"]) == [.number(4)])
        #expect(orders.values(at: []) == [orders])
        #expect(orders.values(at: ["order_id"]) == [])  // a key on an array
        #expect(orders.values(at: ["0"]) == [])  // no indexes

        let body = try JSONValue.parse(#"{"user":{"nick_name":"alice","ids":[7,8]},"b":true,"*":"star"}"#.utf8)
        #expect(body.values(at: ["user", "nick_name"]) == [.string("alice")])
        #expect(body.values(at: ["user", "ids", "*"]) == [.number(7), .number(8)])
        #expect(body.values(at: ["user", "missing"]) == [])
        #expect(body.values(at: ["missing", "*"]) == [])
        #expect(body.values(at: ["b", "*"]) == [])  // a wildcard on a scalar
        #expect(body.values(at: ["user", "nick_name", "x"]) == [])
        // "*" on an object: every value, in canonical member order.
        #expect(body.values(at: ["*"]).compactMap(\.tagText) == ["star", "true"])
        #expect(body.values(at: ["*", "*"]).count == 2)  // the user object's two values
        #expect(body.values(at: ["*", "*", "*"]) == [.number(7), .number(8)])
    }
}

/// A small deterministic generator, so a failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
