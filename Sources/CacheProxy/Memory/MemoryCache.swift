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
/// lookup therefore registers before it is sent (``beginFill(_:)``) and its reply is kept only if
/// no invalidation of that key (and no change of the listener's state) came in between
/// (``finishFill(_:entry:now:)``).
///
/// Shared by every event loop: the entries are split over shards by digest, each behind its own
/// lock held for a dictionary lookup. Lookups need neither a promise nor a thread hop.
public final class MemoryCache: Sendable {
    /// A registered lookup (``beginFill(_:)``).
    public struct FillTicket: Sendable {
        let digest: String
        let shard: Int
        let epoch: UInt64
    }

    /// Counters for tests and metrics.
    public struct Statistics: Sendable, Hashable {
        public var entries = 0
        public var bytes = 0
        public var live = false
    }

    private struct PendingFill {
        var readers: Int
        var invalidated: Bool
    }

    private struct Shard {
        var tier: MemoryTier<CacheEntry, S3FIFOPolicy>
        /// Changes with every change of the listener's state.
        var epoch: UInt64 = 0
        var live = false
        var pending: [String: PendingFill] = [:]

        mutating func invalidate(_ digest: String) {
            tier.remove(digest)
            if pending[digest] != nil { pending[digest]!.invalidated = true }
        }

        mutating func invalidateAll() {
            tier.removeAll()
            for digest in pending.keys { pending[digest]!.invalidated = true }
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
            shard.pending[digest, default: PendingFill(readers: 0, invalidated: false)].readers += 1
            return FillTicket(digest: digest, shard: index, epoch: shard.epoch)
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
            guard let entry, shard.live, shard.epoch == ticket.epoch, !pending.invalidated, entry.isFresh(now: now),
                bytes <= maxEntryBytes
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
                shard.epoch &+= 1
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
                statistics.live = shard.live
            }
        }
        return statistics
    }

    /// The bytes an entry is charged for.
    static func charge(_ entry: CacheEntry) -> Int {
        var bytes = entryOverhead + entry.body.readableBytes + entry.headerBlock.readableBytes
        for tag in entry.tags { bytes += tag.utf8.count + 16 }
        return bytes
    }

    /// The shard of a hex digest: its first digit's value.
    static func shard(of digest: String) -> Int {
        guard let first = digest.utf8.first else { return 0 }
        let value = first >= UInt8(ascii: "a") ? Int(first &- UInt8(ascii: "a")) + 10 : Int(first &- UInt8(ascii: "0"))
        return value & (shardCount - 1)
    }
}
