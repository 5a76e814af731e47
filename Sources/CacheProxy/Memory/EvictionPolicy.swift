/// Decides which entry of a ``MemoryTier`` leaves when room is needed.
///
/// The tier owns keys, values, sizes and expiry, stored in numbered slots; a policy sees only slot
/// numbers (dense, reused after removal) and keeps its own ordering metadata for them. A policy never
/// frees anything itself: ``nextVictim()`` names a slot, forgets it, and the tier releases it.
public protocol EvictionPolicy {
    /// A policy for a tier holding at most `maxBytes` bytes.
    init(maxBytes: Int)

    /// A new entry of `bytes` bytes now lives in `slot`; `key` is its cache key.
    mutating func didInsert(slot: Int, key: String, bytes: Int)

    /// The entry in `slot` was read (a hit).
    mutating func didAccess(slot: Int)

    /// The entry in `slot` was removed by the tier (explicit removal, replacement or expiry), not
    /// evicted: the policy forgets it without recording it as an eviction.
    mutating func didRemove(slot: Int)

    /// Chooses the next entry to evict, forgets it and returns its slot; `nil` when it tracks none.
    mutating func nextVictim() -> Int?

    /// Forgets every entry and any history.
    mutating func removeAll()
}
