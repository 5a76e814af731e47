import NIOCore
import NIOHTTP1

/// What is stored for a response: the entry with its tags and index data, or why nothing is.
/// Pure; used by the request state machine and by background refreshes alike.
enum EntryPlanner {
    enum Plan {
        case store(StoreRequest)
        case skip(NotStoredReason)
    }

    /// Most tags one entry may carry; an entry with more is not stored (purging it would be slow
    /// and its index large).
    static let maxTagsPerEntry = 2000

    /// Tags in the origin's tag header (separated by spaces or commas: `Surrogate-Key: a b`,
    /// `Cache-Tag: a,b`), removed from `head` when the settings say so.
    static func takeOriginTags(_ head: inout HTTPResponseHead, settings: TagSettings) -> [String] {
        guard let header = settings.responseHeader else { return [] }
        var tags: [String] = []
        for value in head.headers[header] {
            for tag in value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) where tag.utf8.count <= TagTemplate.maxTagBytes
            {
                tags.append(String(tag))
            }
        }
        if settings.stripResponseHeader { head.headers.remove(name: header) }
        return tags
    }

    /// The entry for a complete, storable response (`head` already without the origin's tag
    /// header), or why it is not stored.
    ///
    /// - Parameters:
    ///   - lookedUpAt: when the lookup that preceded the fetch answered (ms); a fetch longer
    ///     than the purge records' life is not stored.
    static func plan(
        route: Route, key: CacheKey, request: ProxyRequest, requestBody: ByteBuffer, requestJSON: JSONValue?, generation: Int64,
        lookedUpAt: Int64, head: HTTPResponseHead, body: ByteBuffer, originTags: [String], now: Int64
    ) -> Plan {
        // A purge record outlives any fetch it must stop; past that, the fetch is too old to trust.
        if now - lookedUpAt > CacheIndexScripts.purgeRecordLifetime - 60_000 { return .skip(.slowFetch) }
        var tags = [route.name]
        var values: TagValues
        if let requestJSON {
            values = TagValues(path: request.path, query: request.query, requestJSON: requestJSON, responseBody: body)
        } else {
            values = TagValues(
                path: request.path, query: request.query, requestBody: requestBody.readableBytes > 0 ? requestBody : nil, responseBody: body
            )
        }
        values.render(route.tags, into: &tags)
        var seen = Set(tags)
        for tag in originTags where seen.insert(tag).inserted { tags.append(tag) }
        guard tags.count <= maxTagsPerEntry else { return .skip(.tooManyTags) }
        let entry = CacheEntry(
            status: Int(head.status.code), headers: ProxyResponses.storedHeaders(head), body: body, storedAt: now,
            ttl: route.ttl.nanoseconds / 1_000_000, grace: route.stale.graceMilliseconds, tags: tags)
        return .store(
            StoreRequest(entry: entry, key: key, generation: generation, url: CacheIndexName.url(path: key.path[...], query: key.query)))
    }
}
