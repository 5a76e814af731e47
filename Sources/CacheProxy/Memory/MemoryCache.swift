import NIOConcurrencyHelpers

/// The proxy's in-memory tier: fresh entries read from Redis, kept in this process and served
/// without a round trip, and dropped as soon as Redis says their key changed.
///
/// **Coherence.** It only holds what a Redis lookup returned while the invalidation listener
/// (``RedisInvalidationListener``) was subscribed, and it never serves an entry past its TTL
/// (stale serving always goes to Redis). Every change of an entry key in Redis — a store by any
/// instance, a purge, a soft purge, expiry, eviction, `FLUSHALL` — reaches
/// ``invalidate(digests:)`` or ``invalidateAll()``. While the listener is not subscribed
/// (``coherenceChanged(live:)`` false) the tier is empty and neither serves nor fills.
///
/// **The read race.** A lookup's reply and an invalidation of the same key travel on different
/// connections, so the invalidation can be processed first and the (older) reply after it. A
/// lookup therefore registers before it is sent (``beginFill(_:)``, which numbers it) and its
/// reply is kept only if no invalidation of that key, no `FLUSHALL` and no change of the
/// listener's state came after that number (``finishFill(_:entry:now:)``). Lookups that start
/// after an invalidation are not affected by it, however many are in flight.
///
/// Shared by every event loop: the entries are split over shards by digest, each behind its own
/// lock held for a dictionary lookup. Lookups need neither a promise nor a thread hop.
public final class MemoryCache: Sendable {
    /// A registered lookup (``beginFill(_:)``).
    public struct FillTicket: Sendable {
        let digest: String
        let shard: Int
        /// The shard's sequence number when the lookup was sent.
        let sequence: UInt64
    }

    /// Counters for tests and metrics.
    public struct Statistics: Sendable, Hashable {
        public var entries = 0
        public var bytes = 0
        /// Every shard serves (the listener is subscribed).
        public var live = true
    }

    private struct PendingFill {
        /// Lookups of the key in flight.
        var readers: Int
        /// The sequence number of the key's last invalidation (0: none while they were in flight).
        var invalidatedAt: UInt64
    }

    private struct Shard {
        var tier: MemoryTier<CacheEntry, S3FIFOPolicy>
        var live = false
        /// Numbers lookups and invalidations, in the order this shard saw them.
        var sequence: UInt64 = 0
        /// The last `invalidateAll` or change of the listener's state.
        var allInvalidatedAt: UInt64 = 0
        var pending: [String: PendingFill] = [:]

        mutating func invalidate(_ digest: String) {
            tier.remove(digest)
            if pending[digest] != nil {
                sequence &+= 1
                pending[digest]!.invalidatedAt = sequence
            }
        }

        mutating func invalidateAll() {
            tier.removeAll()
            sequence &+= 1
            allInvalidatedAt = sequence
        }
    }

    /// Number of shards (a power of two).
    static let shardCount = 8
    /// The memory an entry is charged for besides its body and headers.
    static let entryOverhead = 256

    /// The bound on the bytes held (0: the tier is off).
    public let maxBytes: Int
    /// Entries larger than this are not kept.
    public let maxEntryBytes: Int
    private let shards: [NIOLockedValueBox<Shard>]

    /// A tier of at most `maxBytes` (split evenly over the shards), off when 0.
    public init(maxBytes: Int, maxEntryBytes: Int) {
        self.maxBytes = max(0, maxBytes)
        let perShard = self.maxBytes / Self.shardCount
        self.maxEntryBytes = min(maxEntryBytes, perShard)
        self.shards = (0..<Self.shardCount).map { _ in NIOLockedValueBox(Shard(tier: MemoryTier(maxBytes: perShard))) }
    }

    /// Whether the tier can hold anything.
    public var isEnabled: Bool { maxEntryBytes > 0 }

    /// The fresh entry held for `digest` at `now` (milliseconds since the epoch), if any.
    public func lookup(_ digest: String, now: Int64) -> CacheEntry? {
        guard isEnabled else { return nil }
        return shards[Self.shard(of: digest)].withLockedValue { shard in
            guard shard.live else { return nil }
            return shard.tier.get(digest, now: now)
        }
    }

    /// Registers a Redis lookup of `digest` about to be sent; nil when the tier is off or not
    /// coherent (nothing read now may be kept).
    public func beginFill(_ digest: String) -> FillTicket? {
        guard isEnabled else { return nil }
        let index = Self.shard(of: digest)
        return shards[index].withLockedValue { shard in
            guard shard.live else { return nil }
            shard.sequence &+= 1
            shard.pending[digest, default: PendingFill(readers: 0, invalidatedAt: 0)].readers += 1
            return FillTicket(digest: digest, shard: index, sequence: shard.sequence)
        }
    }

    /// The lookup of `ticket` answered: keeps `entry` if it is fresh at `now`, small enough, and
    /// nothing invalidated the key since ``beginFill(_:)``. Pass nil for every other answer (a
    /// miss, a stale entry, an error): each ticket must be finished once.
    public func finishFill(_ ticket: FillTicket, entry: CacheEntry?, now: Int64) {
        let bytes = entry.map(Self.charge) ?? 0
        shards[ticket.shard].withLockedValue { shard in
            guard var pending = shard.pending[ticket.digest] else { return }
            pending.readers -= 1
            shard.pending[ticket.digest] = pending.readers > 0 ? pending : nil
            guard let entry, shard.live, pending.invalidatedAt < ticket.sequence, shard.allInvalidatedAt < ticket.sequence,
                entry.isFresh(now: now), bytes <= maxEntryBytes
            else { return }
            shard.tier.set(ticket.digest, entry, bytes: bytes, expiresAt: entry.storedAt + entry.ttl)
        }
    }

    /// Drops the entries of these digests (Redis says their keys changed).
    public func invalidate(digests: some Sequence<String>) {
        guard isEnabled else { return }
        for digest in digests {
            shards[Self.shard(of: digest)].withLockedValue { $0.invalidate(digest) }
        }
    }

    /// Drops every entry (Redis was flushed, or coherence cannot be vouched for).
    public func invalidateAll() {
        for shard in shards { shard.withLockedValue { $0.invalidateAll() } }
    }

    /// The invalidation listener is subscribed (`live`) or lost. Either way every entry goes:
    /// nothing read before can be vouched for. While not live, nothing is served or kept.
    public func coherenceChanged(live: Bool) {
        for shard in shards {
            shard.withLockedValue { shard in
                shard.invalidateAll()
                shard.live = live
            }
        }
    }

    /// Entries and bytes held now.
    public var statistics: Statistics {
        var statistics = Statistics()
        for shard in shards {
            shard.withLockedValue { shard in
                statistics.entries += shard.tier.count
                statistics.bytes += shard.tier.bytes
                statistics.live = statistics.live && shard.live
            }
        }
        return statistics
    }

    /// The bytes an entry is charged for: the buffer its block and body are slices of (the
    /// Redis value, whose storage NIO rounds up to a power of two), its tags and a fixed overhead.
    static func charge(_ entry: CacheEntry) -> Int {
        var encoded = 40 + entry.body.readableBytes + entry.headerBlock.readableBytes
        var tags = 0
        for tag in entry.tags {
            encoded += tag.utf8.count + 2
            tags += tag.utf8.count + 16
        }
        let storage = encoded <= 1 ? 1 : 1 << (Int.bitWidth - (encoded - 1).leadingZeroBitCount)
        return entryOverhead + storage + tags
    }

    /// The shard of a hex digest: its first digit's value.
    static func shard(of digest: String) -> Int {
        guard let first = digest.utf8.first else { return 0 }
        let value = first >= UInt8(ascii: "a") ? Int(first &- UInt8(ascii: "a")) + 10 : Int(first &- UInt8(ascii: "0"))
        return value & (shardCount - 1)
    }
}
