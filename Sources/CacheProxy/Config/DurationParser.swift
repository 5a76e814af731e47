import NIOCore

/// Parses durations as written in the config: `30s`, `500ms`, `5m`, `1h`, or a bare number of
/// seconds (`30`, `0.5`).
enum DurationParser {
    /// The longest duration accepted: ten years (a `TimeAmount` holds about 292).
    static let maximum: Double = 10 * 365 * 86_400 * 1e9

    /// The duration, or nil when `text` is not one or is longer than ``maximum``.
    static func parse(_ text: String) -> TimeAmount? {
        guard let nanoseconds = nanoseconds(text), nanoseconds <= maximum else { return nil }
        return .nanoseconds(Int64(nanoseconds.rounded()))
    }

    /// Whether `text` is a well-formed duration longer than ``maximum``.
    static func exceedsMaximum(_ text: String) -> Bool {
        nanoseconds(text).map { $0 > maximum } ?? false
    }

    private static func nanoseconds(_ text: String) -> Double? {
        let trimmed = text.trimmingSpaces
        let units: [(suffix: String, nanoseconds: Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(trimmed)
        var scale = 1e9
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            scale = unit.nanoseconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(number), value.isFinite, value >= 0
        else { return nil }
        let result = value * scale
        return result.isFinite ? result : .infinity
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
