/// Query-string normalization for cache keys.
///
/// Parameters are split on `&`, names and values percent-decoded (`+` is a space, as in HTML
/// forms and in Flask/Werkzeug), and sorted by name, so `?b=2&a=1` and `?a=%31&b=2` give the
/// same list. Repeated names keep their order: `?q=1&q=2` and `?q=2&q=1` differ, because most
/// frameworks read the first (or the last) value and answer them differently. Empty pieces
/// (`&&`) are dropped. Invalid escapes are kept literally.
public enum QueryString {
    /// One decoded parameter.
    public struct Parameter: Sendable, Hashable {
        /// The decoded name, as bytes.
        public let name: [UInt8]
        /// The decoded value, as bytes; empty for `?flag` and `?flag=`.
        public let value: [UInt8]
    }

    /// The normalized parameters of `query` (the part after `?`, without it) that `selection` keeps.
    public static func normalized(_ query: Substring, keeping selection: QuerySelection) -> [Parameter] {
        var parameters: [Parameter] = []
        for piece in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = piece.firstIndex(of: UInt8(ascii: "="))
            let name = decode(piece[..<(equals ?? piece.endIndex)])
            if case .only(let names) = selection, !names.contains(String(decoding: name, as: UTF8.self)) {
                continue
            }
            let value = equals.map { decode(piece[piece.index(after: $0)...]) } ?? []
            parameters.append(Parameter(name: name, value: value))
        }
        // Stable by name: the index breaks ties, so repeated names keep their order.
        return parameters.enumerated().sorted { lhs, rhs in
            lhs.element.name == rhs.element.name
                ? lhs.offset < rhs.offset : lhs.element.name.lexicographicallyPrecedes(rhs.element.name)
        }.map(\.element)
    }

    /// Percent-decodes bytes; `+` becomes a space unless `plusIsSpace` is false (a path).
    static func decode(_ bytes: Substring.UTF8View.SubSequence, plusIsSpace: Bool = true) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"),
                let first = bytes.index(index, offsetBy: 1, limitedBy: bytes.endIndex), first < bytes.endIndex,
                let second = bytes.index(index, offsetBy: 2, limitedBy: bytes.endIndex), second < bytes.endIndex,
                let high = UInt8.hexDigitValue(bytes[first]), let low = UInt8.hexDigitValue(bytes[second])
            {
                output.append(high << 4 | low)
                index = bytes.index(after: second)
                continue
            }
            output.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            index = bytes.index(after: index)
        }
        return output
    }
}
