import NIOHTTP1

extension HTTPHeaders {
    /// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
    static let hopByHop: Set<String> = RequestNormalizer.hopByHop

    /// Headers the proxy sets on each response it sends; never stored or passed on from upstream.
    static let perResponse: Set<String> = ["age", "x-cache", "cache-status"]

    /// Response headers a `Connection` token never removes: framing the proxy relies on and
    /// headers the storage decision reads.
    static let protectedResponseHeaders: Set<String> = ["content-length", "cache-control", "vary", "set-cookie", "content-type"]

    /// Removes hop-by-hop headers, including every header named in `Connection` that is not
    /// protected.
    mutating func removeHopByHop(protecting protected: Set<String> = HTTPHeaders.protectedResponseHeaders) {
        var named: [String] = []
        for value in self["connection"] {
            for token in value.split(separator: ",") {
                let name = token.trimmingCharacters(in: " \t").lowercased()
                if !name.isEmpty, !protected.contains(name) { named.append(name) }
            }
        }
        for name in named {
            remove(name: name)
        }
        for name in Self.hopByHop {
            remove(name: name)
        }
    }

    /// Appends `value` to the comma-separated list in header `name`.
    mutating func appendToList(name: String, value: String) {
        let existing = self[name]
        guard !existing.isEmpty else {
            add(name: name, value: value)
            return
        }
        remove(name: name)
        add(name: name, value: (existing + [value]).joined(separator: ", "))
    }
}
