/// RFC 8785 JSON Canonicalization Scheme.
///
/// - Object members are sorted by name compared as arrays of UTF-16 code units (§3.2.3).
/// - No whitespace.
/// - Strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A, U+000C, U+000D as
///   `\b`, `\t`, `\n`, `\f`, `\r`; the other U+0000–U+001F as `\u00xx` (lower-case hex);
///   everything else, `/` and non-ASCII included, as literal UTF-8 (§3.2.2.2).
/// - Numbers in ECMAScript `Number.prototype.toString` form (§3.2.2.3): see ``numberText(_:)``.
///
/// Serialization recurses once per nesting level; values from `JSONValue.parse(_:maxDepth:)`
/// are bounded by its `maxDepth`.
public enum CanonicalJSON {
    /// The canonical UTF-8 bytes of `value`.
    ///
    /// A non-finite number (only possible in a value built in code) is written as `null`, as
    /// ECMAScript's `JSON.stringify` does.
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var buffer: [UInt8] = []
        serialize(value, into: &buffer)
        return buffer
    }

    /// Appends the canonical UTF-8 bytes of `value` to `buffer`, as ``serialize(_:)`` returns them.
    public static func serialize(_ value: JSONValue, into buffer: inout [UInt8]) {
        switch value {
        case .null:
            buffer.append(contentsOf: "null".utf8)
        case .bool(let bool):
            buffer.append(contentsOf: bool ? "true".utf8 : "false".utf8)
        case .number(let number):
            appendNumber(number, to: &buffer)
        case .string(let string):
            appendString(string, to: &buffer)
        case .array(let elements):
            buffer.append(JSONByte.openBracket)
            for (position, element) in elements.enumerated() {
                if position > 0 { buffer.append(JSONByte.comma) }
                serialize(element, into: &buffer)
            }
            buffer.append(JSONByte.closeBracket)
        case .object(let members):
            buffer.append(JSONByte.openBrace)
            for (position, member) in sortedMembers(members).enumerated() {
                if position > 0 { buffer.append(JSONByte.comma) }
                appendString(member.key, to: &buffer)
                buffer.append(JSONByte.colon)
                serialize(member.value, into: &buffer)
            }
            buffer.append(JSONByte.closeBrace)
        }
    }

    /// A number in ECMAScript `Number.prototype.toString` form, as RFC 8785 §3.2.2.3 requires.
    ///
    /// The digits are the shortest that read back as `value` (the closest such when there are
    /// several); -0 is `0`; integers below 10²¹ are written out (`100`, `295147905179352830000`);
    /// 10⁻⁶ ≤ |x| < 10²¹ in plain decimal (`0.000001`, `333333333.3333333`); anything else in
    /// exponent form (`1e-7`, `1.5e+300`, `-1e+21`). NaN and ±infinity give `NaN`, `Infinity`
    /// and `-Infinity`, which are not JSON (``serialize(_:)`` writes them as `null`).
    public static func numberText(_ value: Double) -> String {
        var bytes: [UInt8] = []
        appendNumberText(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The members of an object in canonical order: names compared as UTF-16 code units.
    static func sortedMembers(_ members: [String: JSONValue]) -> [(key: String, value: JSONValue)] {
        members.sorted { $0.key.utf16.lexicographicallyPrecedes($1.key.utf16) }
    }

    // MARK: Strings

    private static func appendString(_ string: String, to buffer: inout [UInt8]) {
        var string = string
        buffer.append(JSONByte.quote)
        string.withUTF8 { utf8 in
            var runStart = 0
            for position in utf8.indices {
                let byte = utf8[position]
                guard byte < 0x20 || byte == JSONByte.quote || byte == JSONByte.backslash else { continue }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<position]))
                appendEscape(byte, to: &buffer)
                runStart = position + 1
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        buffer.append(JSONByte.quote)
    }

    /// The escape of `"`, `\` or a control character, as ECMAScript's `JSON.stringify` writes it.
    private static func appendEscape(_ byte: UInt8, to buffer: inout [UInt8]) {
        buffer.append(JSONByte.backslash)
        switch byte {
        case JSONByte.quote, JSONByte.backslash: buffer.append(byte)
        case 0x08: buffer.append(UInt8(ascii: "b"))
        case 0x09: buffer.append(UInt8(ascii: "t"))
        case 0x0A: buffer.append(UInt8(ascii: "n"))
        case 0x0C: buffer.append(UInt8(ascii: "f"))
        case 0x0D: buffer.append(UInt8(ascii: "r"))
        default:
            buffer.append(contentsOf: "u00".utf8)
            buffer.append(hexDigit(byte >> 4))
            buffer.append(hexDigit(byte & 0x0F))
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? JSONByte.zero + nibble : UInt8(ascii: "a") + nibble - 10
    }

    // MARK: Numbers

    private static func appendNumber(_ value: Double, to buffer: inout [UInt8]) {
        guard value.isFinite else {
            buffer.append(contentsOf: "null".utf8)
            return
        }
        appendNumberText(value, to: &buffer)
    }

    /// ECMA-262 Number::toString(x) for radix 10, "Note 2" digits included.
    private static func appendNumberText(_ value: Double, to buffer: inout [UInt8]) {
        if value.isNaN {
            buffer.append(contentsOf: "NaN".utf8)
            return
        }
        if value == 0 {  // -0 too
            buffer.append(JSONByte.zero)
            return
        }
        if value < 0 { buffer.append(JSONByte.minus) }
        let magnitude = value.magnitude
        if magnitude.isInfinite {
            buffer.append(contentsOf: "Infinity".utf8)
            return
        }
        // Integers below 2^53 are exact, and their own shortest digits.
        if magnitude < 9_007_199_254_740_992, magnitude.rounded(.towardZero) == magnitude {
            buffer.append(contentsOf: String(UInt64(magnitude)).utf8)
            return
        }

        // x = s × 10^(n−k), s of k digits, k as small as possible.
        let (digits, n) = shortestDigits(magnitude)
        let k = digits.count
        if k <= n && n <= 21 {
            // Step 6: the digits, then n−k zeros.
            buffer.append(contentsOf: digits)
            buffer.append(contentsOf: repeatElement(JSONByte.zero, count: n - k))
        } else if 0 < n && n <= 21 {
            // Step 7: the first n digits, '.', the other k−n.
            buffer.append(contentsOf: digits[..<n])
            buffer.append(JSONByte.dot)
            buffer.append(contentsOf: digits[n...])
        } else if -6 < n && n <= 0 {
            // Step 8: "0.", −n zeros, the digits.
            buffer.append(JSONByte.zero)
            buffer.append(JSONByte.dot)
            buffer.append(contentsOf: repeatElement(JSONByte.zero, count: -n))
            buffer.append(contentsOf: digits)
        } else {
            // Steps 9 and 10: d[.ddd]e±(n−1).
            buffer.append(digits[0])
            if k > 1 {
                buffer.append(JSONByte.dot)
                buffer.append(contentsOf: digits[1...])
            }
            buffer.append(UInt8(ascii: "e"))
            buffer.append(n - 1 < 0 ? JSONByte.minus : JSONByte.plus)
            buffer.append(contentsOf: String((n - 1).magnitude).utf8)
        }
    }

    /// The shortest round-tripping decimal digits of a positive finite `value` (no leading or
    /// trailing zeros) and n, the position of the decimal point: value = 0.digits × 10ⁿ.
    ///
    /// Swift's `description` already picks the shortest digits that read back as `value`, the
    /// closest to it when several do; only its layout (`1.5e-07`, `123.25`, `1e+23`) differs
    /// from ECMAScript's, so it is taken apart here and re-assembled by the caller.
    private static func shortestDigits(_ value: Double) -> (digits: [UInt8], n: Int) {
        var digits: [UInt8] = []
        digits.reserveCapacity(17)
        var pointPosition: Int?
        var exponent = 0
        var exponentSign = 1
        var inExponent = false
        for byte in value.description.utf8 {
            switch byte {
            case JSONByte.zero...JSONByte.nine where inExponent:
                exponent = exponent * 10 + Int(byte - JSONByte.zero)
            case JSONByte.zero...JSONByte.nine:
                digits.append(byte)
            case JSONByte.dot:
                pointPosition = digits.count
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                inExponent = true
            case JSONByte.minus where inExponent:
                exponentSign = -1
            default:
                break
            }
        }
        var n = (pointPosition ?? digits.count) + exponentSign * exponent
        let leadingZeros = digits.prefix { $0 == JSONByte.zero }.count
        n -= leadingZeros
        digits.removeFirst(leadingZeros)
        while digits.last == JSONByte.zero { digits.removeLast() }
        return (digits, n)
    }
}
