import NIOCore

/// Parses durations as written in the config: `30s`, `500ms`, `5m`, `1h`, or a bare number of
/// seconds (`30`, `0.5`).
enum DurationParser {
    /// The duration, or nil when `text` is not one.
    static func parse(_ text: String) -> TimeAmount? {
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
        return .nanoseconds(Int64((value * scale).rounded()))
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
