import NIOHTTP1

extension HTTPHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// Headers the proxy sets on each response it sends; never stored or passed on from upstream.
    static let perResponse: Set<String> = ["age", "x-cache", "cache-status"]

    /// Whether the message body is chunked.
    var isChunked: Bool {
        self["transfer-encoding"].contains { $0.lowercased().contains("chunked") }
    }

    /// Removes hop-by-hop headers, including every header named in `Connection`.
    mutating func removeHopByHop() {
        let named = self["connection"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: " \t").lowercased() }
        for name in named where !name.isEmpty {
            remove(name: name)
        }
        for name in Self.hopByHop {
            remove(name: name)
        }
    }

    /// Appends `value` to the comma-separated list in header `name`.
    mutating func appendToList(name: String, value: String) {
        let existing = self[name]
        remove(name: name)
        add(name: name, value: (existing + [value]).joined(separator: ", "))
    }
}
