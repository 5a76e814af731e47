import NIOCore

/// A parsed JSON value (RFC 8259 under the I-JSON rules of RFC 7493 that RFC 8785 requires).
///
/// Strings keep the exact Unicode scalars of the text, so ``CanonicalJSON`` reproduces them
/// byte for byte. Note that Swift compares `String`s by canonical equivalence: `"é"` written as
/// one scalar and as `e` + U+0301 are `==` here (and are therefore refused as duplicate keys of
/// one object), although their canonical serializations differ.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number. Always finite when it comes from `parse(_:maxDepth:)`.
    case number(Double)
    /// A string, unescaped.
    case string(String)
    /// An array, in order.
    case array([JSONValue])
    /// An object. Member order is not kept: ``CanonicalJSON`` sorts members by name.
    case object([String: JSONValue])
}

/// Why a JSON text was refused: what was wrong, and where.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem; compare with the static members (`.duplicateKey`, …).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case emptyInput = "empty-input"
            case unexpectedEnd = "unexpected-end"
            case unexpectedCharacter = "unexpected-character"
            case trailingData = "trailing-data"
            case invalidUTF8 = "invalid-utf8"
            case controlCharacter = "control-character"
            case invalidEscape = "invalid-escape"
            case invalidSurrogate = "invalid-surrogate"
            case duplicateKey = "duplicate-key"
            case invalidNumber = "invalid-number"
            case numberOutOfRange = "number-out-of-range"
            case tooDeep = "too-deep"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Nothing but JSON whitespace (or nothing at all).
        public static let emptyInput = Code(.emptyInput)
        /// The text ends inside a value.
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A byte that the JSON grammar does not allow at this place.
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// Something other than whitespace after the value.
        public static let trailingData = Code(.trailingData)
        /// A byte sequence that is not well-formed UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// U+0000–U+001F unescaped inside a string.
        public static let controlCharacter = Code(.controlCharacter)
        /// A backslash escape that JSON does not define, or `\u` without four hex digits.
        public static let invalidEscape = Code(.invalidEscape)
        /// A `\u` escape of a lone or mis-ordered UTF-16 surrogate (I-JSON forbids them).
        public static let invalidSurrogate = Code(.invalidSurrogate)
        /// An object with two members of the same name (compared after unescaping).
        public static let duplicateKey = Code(.duplicateKey)
        /// A number that does not match the RFC 8259 grammar (or NaN, Infinity).
        public static let invalidNumber = Code(.invalidNumber)
        /// A number too large for a `Double` (it would become ±infinity).
        public static let numberOutOfRange = Code(.numberOutOfRange)
        /// More nested arrays and objects than `maxDepth`.
        public static let tooDeep = Code(.tooDeep)

        /// A short, stable name such as `duplicate-key`.
        public var description: String { base.rawValue }
    }

    /// The kind of problem.
    public let code: Code
    /// Byte offset, from the start of the JSON text, where the problem was found.
    public let offset: Int
    /// What is wrong, for people.
    public let reason: String

    /// Creates an error.
    init(_ code: Code, at offset: Int, _ reason: String) {
        self.code = code
        self.offset = offset
        self.reason = reason
    }

    /// `invalid JSON at byte N: reason`.
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension JSONValue {
    /// Parses exactly one JSON text (leading/trailing JSON whitespace allowed, nothing else).
    ///
    /// The parser is strict: invalid UTF-8, unescaped control characters, unknown escapes, lone
    /// surrogates, duplicate member names, numbers outside the RFC 8259 grammar or beyond
    /// `Double`'s range, and trailing data are all errors. It does not recurse, so no input can
    /// exhaust the stack. Numbers are rounded to the nearest `Double`; ones too small for it become 0.
    ///
    /// - Parameters:
    ///   - bytes: The readable bytes of the buffer; the reader index does not move.
    ///   - maxDepth: Most arrays/objects open at once; default 64. A scalar is depth 0, `[]` is 1.
    ///     Keep it modest: comparing, serializing and freeing a value recurse once per level.
    /// - Throws: ``JSONParseError`` saying where and why.
    public static func parse(_ bytes: ByteBuffer, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeReadableBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try parse(unsafeBytes: raw, maxDepth: maxDepth) }
        }.get()
    }

    /// Parses exactly one JSON text from any collection of bytes (`[UInt8]`, `String.UTF8View`, …).
    ///
    /// Same rules as `parse(_:maxDepth:)`; a non-contiguous collection is copied first.
    /// - Parameters:
    ///   - bytes: The JSON text.
    ///   - maxDepth: Most arrays/objects open at once; default 64.
    /// - Throws: ``JSONParseError`` saying where and why.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        let contiguous = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(JSONParseError) -> JSONValue in
                try parse(unsafeBytes: UnsafeRawBufferPointer(buffer), maxDepth: maxDepth)
            }
        }
        if let contiguous { return try contiguous.get() }
        return try Array(bytes).withUnsafeBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try parse(unsafeBytes: raw, maxDepth: maxDepth) }
        }.get()
    }

    /// The parser's core, over raw memory; `bytes` need only stay valid for the call.
    static func parse(unsafeBytes bytes: UnsafeRawBufferPointer, maxDepth: Int) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, maxDepth: maxDepth)
        return try parser.parseText()
    }

    /// The scalar's text for use in a cache tag: a string as is, a number in its JCS form
    /// (5 → `5`, 1.5 → `1.5`), `true`/`false`; nil for null, arrays, objects and non-finite numbers.
    public var tagText: String? {
        switch self {
        case .string(let string): return string
        case .number(let number): return number.isFinite ? CanonicalJSON.numberText(number) : nil
        case .bool(let bool): return bool ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }

    /// Values at a path of object keys, where the component `"*"` means every element of an array
    /// (or every value of an object, in ``CanonicalJSON`` member order). Missing keys, keys
    /// applied to arrays or scalars, and `"*"` applied to scalars give no values; an empty path
    /// gives `[self]`. E.g. `["*", "order_id"]` on `[{"order_id":1},{"order_id":2}]` gives
    /// `[.number(1), .number(2)]`. A member literally named `*` is reached only through the wildcard.
    public func values(at path: [String]) -> [JSONValue] {
        var current = [self]
        for component in path {
            var next: [JSONValue] = []
            for value in current {
                switch value {
                case .array(let elements) where component == "*":
                    next.append(contentsOf: elements)
                case .object(let members) where component == "*":
                    next.append(contentsOf: CanonicalJSON.sortedMembers(members).map(\.value))
                case .object(let members):
                    if let member = members[component] { next.append(member) }
                case .null, .bool, .number, .string, .array:
                    break
                }
            }
            current = next
            if current.isEmpty { break }
        }
        return current
    }
}

/// A strict, non-recursive RFC 8259 / I-JSON parser over raw bytes.
private struct JSONParser {
    /// An array or object still open, innermost last.
    private struct Frame {
        let isObject: Bool
        var elements: [JSONValue] = []
        var members: [String: JSONValue] = [:]
        /// The name of the object member whose value is being parsed.
        var key = ""
    }

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var index = 0
    /// Unescaped UTF-8 of the string being parsed, when it has escapes.
    private var scratch: [UInt8] = []

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    mutating func parseText() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else {
            throw JSONParseError(.emptyInput, at: index, "no JSON value: the input is empty or only whitespace")
        }
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw unexpected(.trailingData, expected: "the end of the input after the value") }
        return value
    }

    /// Parses one value, keeping open containers on an explicit stack instead of recursing.
    private mutating func parseValue() throws(JSONParseError) -> JSONValue {
        var stack: [Frame] = []
        descend: while true {
            skipWhitespace()
            guard index < bytes.count else { throw unexpected(.unexpectedCharacter, expected: "a value") }
            var value: JSONValue
            switch bytes[index] {
            case JSONByte.openBrace:
                try checkDepth(stack.count)
                index += 1
                skipWhitespace()
                if consume(JSONByte.closeBrace) {
                    value = .object([:])
                } else {
                    let key = try parseMemberName(notIn: [:])
                    stack.append(Frame(isObject: true, key: key))
                    continue descend
                }
            case JSONByte.openBracket:
                try checkDepth(stack.count)
                index += 1
                skipWhitespace()
                if consume(JSONByte.closeBracket) {
                    value = .array([])
                } else {
                    stack.append(Frame(isObject: false))
                    continue descend
                }
            case JSONByte.quote:
                value = .string(try parseString())
            case JSONByte.minus, JSONByte.zero...JSONByte.nine:
                value = .number(try parseNumber())
            case UInt8(ascii: "t"):
                value = .bool(true)
                try parseLiteral("true")
            case UInt8(ascii: "f"):
                value = .bool(false)
                try parseLiteral("false")
            case UInt8(ascii: "n"):
                value = .null
                try parseLiteral("null")
            case JSONByte.plus, JSONByte.dot:
                throw JSONParseError(.invalidNumber, at: index, "a number must start with '-' or a digit")
            case UInt8(ascii: "N"), UInt8(ascii: "I"):
                throw JSONParseError(.invalidNumber, at: index, "NaN and Infinity are not JSON numbers")
            default:
                throw unexpected(.unexpectedCharacter, expected: "a value")
            }

            // Hand the finished value to the enclosing containers, closing those that end here.
            while !stack.isEmpty {
                let top = stack.count - 1
                skipWhitespace()
                if stack[top].isObject {
                    let key = stack[top].key
                    stack[top].members[key] = value
                    if consume(JSONByte.comma) {
                        skipWhitespace()
                        stack[top].key = try parseMemberName(notIn: stack[top].members)
                        continue descend
                    }
                    guard consume(JSONByte.closeBrace) else { throw unexpected(.unexpectedCharacter, expected: "',' or '}'") }
                    value = .object(stack.removeLast().members)
                } else {
                    stack[top].elements.append(value)
                    if consume(JSONByte.comma) { continue descend }
                    guard consume(JSONByte.closeBracket) else { throw unexpected(.unexpectedCharacter, expected: "',' or ']'") }
                    value = .array(stack.removeLast().elements)
                }
            }
            return value
        }
    }

    private func checkDepth(_ openContainers: Int) throws(JSONParseError) {
        guard openContainers < maxDepth else {
            throw JSONParseError(.tooDeep, at: index, "more than \(maxDepth) nested arrays and objects")
        }
    }

    /// Parses `"name" :` and refuses a name the object already has.
    private mutating func parseMemberName(notIn members: [String: JSONValue]) throws(JSONParseError) -> String {
        guard index < bytes.count, bytes[index] == JSONByte.quote else {
            throw unexpected(.unexpectedCharacter, expected: "a member name in double quotes")
        }
        let start = index
        let key = try parseString()
        guard members[key] == nil else {
            throw JSONParseError(.duplicateKey, at: start, "duplicate member name \"\(key)\"")
        }
        skipWhitespace()
        guard consume(JSONByte.colon) else { throw unexpected(.unexpectedCharacter, expected: "':' after the member name") }
        return key
    }

    // MARK: Strings

    /// Parses a string starting at its opening quote, validating UTF-8 and escapes.
    private mutating func parseString() throws(JSONParseError) -> String {
        let start = index
        index += 1
        var runStart = index
        var hasEscapes = false
        scratch.removeAll(keepingCapacity: true)
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case JSONByte.quote:
                let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<index])
                index += 1
                guard hasEscapes else { return String(decoding: run, as: UTF8.self) }
                scratch.append(contentsOf: run)
                return String(decoding: scratch, as: UTF8.self)
            case JSONByte.backslash:
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
                hasEscapes = true
                try parseEscape()
                runStart = index
            case 0x00..<0x20:
                throw JSONParseError(
                    .controlCharacter, at: index, "control character \(Self.describe(byte)) must be escaped inside a string")
            case 0x20..<0x80:
                index += 1
            default:
                guard let length = utf8SequenceLength(at: index) else { throw invalidUTF8() }
                index += length
            }
        }
        throw JSONParseError(.unexpectedEnd, at: index, "unterminated string starting at byte \(start)")
    }

    /// Parses one escape at a backslash and appends its UTF-8 to `scratch`.
    private mutating func parseEscape() throws(JSONParseError) {
        let start = index
        guard index + 1 < bytes.count else { throw JSONParseError(.unexpectedEnd, at: bytes.count, "the input ends inside an escape") }
        let simple: UInt8
        switch bytes[index + 1] {
        case JSONByte.quote: simple = JSONByte.quote
        case JSONByte.backslash: simple = JSONByte.backslash
        case JSONByte.slash: simple = JSONByte.slash
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            try parseUnicodeEscape()
            return
        default:
            index += 1
            if bytes[index] >= 0x80, utf8SequenceLength(at: index) == nil { throw invalidUTF8() }
            throw JSONParseError(.invalidEscape, at: start, "\\\(Self.describe(bytes[index])) is not a JSON escape")
        }
        scratch.append(simple)
        index += 2
    }

    /// Parses `\uXXXX`, or a `\uD8xx\uDCxx` surrogate pair, at a backslash.
    private mutating func parseUnicodeEscape() throws(JSONParseError) {
        let start = index
        let unit = try hex4(at: index + 2)
        index += 6
        switch unit {
        case 0xD800...0xDBFF:
            guard index + 1 < bytes.count, bytes[index] == JSONByte.backslash, bytes[index + 1] == UInt8(ascii: "u") else {
                throw JSONParseError(.invalidSurrogate, at: start, "high surrogate \\u\(Self.hex(unit)) is not followed by a low surrogate")
            }
            let low = try hex4(at: index + 2)
            guard (0xDC00...0xDFFF).contains(low) else {
                throw JSONParseError(.invalidSurrogate, at: start, "high surrogate \\u\(Self.hex(unit)) is followed by \\u\(Self.hex(low))")
            }
            index += 6
            appendUTF8(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            throw JSONParseError(.invalidSurrogate, at: start, "low surrogate \\u\(Self.hex(unit)) without a high surrogate before it")
        default:
            appendUTF8(unit)
        }
    }

    /// The four hex digits at `position`, as a UTF-16 code unit.
    private func hex4(at position: Int) throws(JSONParseError) -> UInt32 {
        var unit: UInt32 = 0
        for offset in position..<position + 4 {
            guard offset < bytes.count else {
                throw JSONParseError(.unexpectedEnd, at: bytes.count, "the input ends inside a \\u escape")
            }
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case JSONByte.zero...JSONByte.nine: digit = byte - JSONByte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONParseError(.invalidEscape, at: position - 2, "\\u must be followed by four hex digits")
            }
            unit = unit << 4 | UInt32(digit)
        }
        return unit
    }

    /// Appends a scalar value (never a surrogate) as UTF-8.
    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// The length of the well-formed UTF-8 sequence at `position` (Unicode Table 3-7), or nil.
    private func utf8SequenceLength(at position: Int) -> Int? {
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        let length: Int
        switch bytes[position] {
        case 0x00..<0x80: return 1
        case 0xC2...0xDF: length = 2
        case 0xE0: (length, low) = (3, 0xA0)
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: (length, high) = (3, 0x9F)
        case 0xF0: (length, low) = (4, 0x90)
        case 0xF1...0xF3: length = 4
        case 0xF4: (length, high) = (4, 0x8F)
        default: return nil
        }
        guard position + length <= bytes.count, (low...high).contains(bytes[position + 1]) else { return nil }
        for continuation in position + 2..<position + length where bytes[continuation] & 0xC0 != 0x80 {
            return nil
        }
        return length
    }

    private func invalidUTF8() -> JSONParseError {
        JSONParseError(.invalidUTF8, at: index, "invalid UTF-8 starting with \(Self.describe(bytes[index]))")
    }

    // MARK: Numbers and literals

    /// Checks the RFC 8259 number grammar, then converts the text to the nearest `Double`.
    private mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = index
        let negative = bytes[index] == JSONByte.minus
        if negative { index += 1 }
        guard index < bytes.count, Self.isDigit(bytes[index]) else {
            throw JSONParseError(.invalidNumber, at: index, "expected a digit after '-'")
        }
        if bytes[index] == JSONByte.zero {
            index += 1
            if index < bytes.count, Self.isDigit(bytes[index]) {
                throw JSONParseError(.invalidNumber, at: start, "leading zeros are not allowed")
            }
        } else {
            skipDigits()
        }
        let integerEnd = index
        if index < bytes.count, bytes[index] == JSONByte.dot {
            index += 1
            guard index < bytes.count, Self.isDigit(bytes[index]) else {
                throw JSONParseError(.invalidNumber, at: index, "expected a digit after the decimal point")
            }
            skipDigits()
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            if index < bytes.count, bytes[index] == JSONByte.plus || bytes[index] == JSONByte.minus { index += 1 }
            guard index < bytes.count, Self.isDigit(bytes[index]) else {
                throw JSONParseError(.invalidNumber, at: index, "expected a digit in the exponent")
            }
            skipDigits()
        }
        if index < bytes.count {
            switch bytes[index] {
            case JSONByte.dot, JSONByte.plus, JSONByte.minus, UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                throw JSONParseError(.invalidNumber, at: index, "unexpected \(Self.describe(bytes[index])) in a number")
            default:
                break
            }
        }

        // Up to 15 digits and nothing else: exact in a Double without going through text.
        let digitsStart = negative ? start + 1 : start
        if integerEnd == index, index - digitsStart <= 15 {
            var magnitude: Int64 = 0
            for position in digitsStart..<index { magnitude = magnitude * 10 + Int64(bytes[position] - JSONByte.zero) }
            return negative ? -Double(magnitude) : Double(magnitude)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text) else {
            throw JSONParseError(.invalidNumber, at: start, "\(text) is not a number")
        }
        guard value.isFinite else {
            throw JSONParseError(.numberOutOfRange, at: start, "the number is too large for a double")
        }
        // An integer literal from 2^53 on may not be exact in a Double: two different ids (which
        // an API reading exact integers tells apart, 2^53 and 2^53 + 1) would canonicalize alike
        // and share a cache entry. Refused, so such a body is forwarded uncached.
        if integerEnd == index, value.magnitude >= 9_007_199_254_740_992 {
            throw JSONParseError(.numberOutOfRange, at: start, "the integer \(text) is beyond 2^53 and not exact in a double")
        }
        return value
    }

    private mutating func skipDigits() {
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
    }

    private mutating func parseLiteral(_ literal: StaticString) throws(JSONParseError) {
        let start = index
        for expected in UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount) {
            guard index < bytes.count else {
                throw JSONParseError(.unexpectedEnd, at: index, "the input ends inside the literal \(literal)")
            }
            guard bytes[index] == expected else {
                if bytes[index] >= 0x80, utf8SequenceLength(at: index) == nil { throw invalidUTF8() }
                throw JSONParseError(.unexpectedCharacter, at: start, "invalid literal; expected \(literal)")
            }
            index += 1
        }
    }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case JSONByte.space, JSONByte.tab, JSONByte.lineFeed, JSONByte.carriageReturn: index += 1
            default: return
            }
        }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// The error for the byte at `index` (or the end): invalid UTF-8 takes precedence over `code`.
    private func unexpected(_ code: JSONParseError.Code, expected: String) -> JSONParseError {
        guard index < bytes.count else {
            return JSONParseError(.unexpectedEnd, at: index, "the input ends where \(expected) was expected")
        }
        let byte = bytes[index]
        if byte >= 0x80, utf8SequenceLength(at: index) == nil { return invalidUTF8() }
        return JSONParseError(code, at: index, "expected \(expected), found \(Self.describe(byte))")
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= JSONByte.zero && byte <= JSONByte.nine }

    /// `'x'` for printable ASCII, `byte 0xNN` otherwise.
    private static func describe(_ byte: UInt8) -> String {
        if (0x21...0x7E).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + hex(UInt32(byte), width: 2)
    }

    /// Lower-case hex, zero-padded to `width` digits.
    private static func hex(_ value: UInt32, width: Int = 4) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// The ASCII bytes the parser and serializer look for.
enum JSONByte {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space = UInt8(ascii: " ")
    static let quote = UInt8(ascii: "\"")
    static let plus = UInt8(ascii: "+")
    static let comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-")
    static let dot = UInt8(ascii: ".")
    static let slash = UInt8(ascii: "/")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let colon = UInt8(ascii: ":")
    static let openBracket = UInt8(ascii: "[")
    static let backslash = UInt8(ascii: "\\")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
}
