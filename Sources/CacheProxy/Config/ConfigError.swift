/// A configuration file that cannot be used: names the file, the line, the key and what is wrong.
///
/// Printed as `config/app.yaml:12: routes[1].methods: unknown method "GTE" (expected GET, HEAD or POST)`.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file, as given.
    public let file: String
    /// 1-based line of the offending value, when known.
    public let line: Int?
    /// Dotted path of the key, e.g. `routes[1].methods`; empty for the whole file.
    public let key: String
    /// What is wrong.
    public let message: String

    /// Creates an error.
    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}
