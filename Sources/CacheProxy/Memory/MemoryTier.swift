/// A byte-bounded in-memory cache of `Value`s keyed by the cache key digest, with expiry, whose
/// eviction order is decided by `Policy` (``LRUPolicy`` or ``S3FIFOPolicy``).
///
/// Pure data structure: no locking, no I/O, no clock (callers pass `now`). After every operation
/// ``bytes`` ≤ ``maxBytes``; ``get(_:now:)`` never returns an expired entry. All operations are O(1)
/// amortized. Not thread-safe: confine one instance to one event loop or guard it.
public struct MemoryTier<Value, Policy: EvictionPolicy> {
    fileprivate struct Entry {
        var key: String
        var value: Value
        var bytes: Int
        var expiresAt: Int64
    }

    /// The bound on ``bytes``; 0 disables the tier (it stores nothing).
    public let maxBytes: Int
    /// Sum of the `bytes` of the stored entries.
    public private(set) var bytes = 0
    private var index: [String: Int] = [:]
    private var entries: [Entry?] = []
    private var freeSlots: [Int] = []
    private var policy: Policy

    /// An empty tier bounded by `maxBytes` bytes (0 = disabled; negative is treated as 0).
    public init(maxBytes: Int) {
        self.maxBytes = max(0, maxBytes)
        self.policy = Policy(maxBytes: self.maxBytes)
    }

    /// Number of stored entries (possibly including expired ones not yet looked up).
    public var count: Int { index.count }

    /// The value stored for `key` if it has not expired at `now` (milliseconds, same clock as
    /// `expiresAt`; an entry is served while `now < expiresAt`). An expired entry is removed.
    public mutating func get(_ key: String, now: Int64) -> Value? {
        guard let slot = index[key], let entry = entries[slot] else { return nil }
        guard now < entry.expiresAt else {
            remove(slot: slot)
            return nil
        }
        policy.didAccess(slot: slot)
        return entry.value
    }

    /// Stores `value` for `key`, occupying `bytes` bytes until `expiresAt` (milliseconds), evicting
    /// as the policy decides to make room. A previous entry for `key` is always removed, even when
    /// the new one is not stored. Returns whether it was stored: not when `bytes > maxBytes`
    /// (including every entry when the tier is disabled).
    @discardableResult
    public mutating func set(_ key: String, _ value: Value, bytes: Int, expiresAt: Int64) -> Bool {
        precondition(bytes >= 0, "negative entry size \(bytes)")
        remove(key)
        guard maxBytes > 0, bytes <= maxBytes else { return false }
        while self.bytes + bytes > maxBytes {
            guard let victim = policy.nextVictim() else {
                preconditionFailure("policy has no victim with \(self.bytes) bytes in \(count) entries")
            }
            release(slot: victim)
        }
        let slot = freeSlots.popLast() ?? entries.count
        let entry = Entry(key: key, value: value, bytes: bytes, expiresAt: expiresAt)
        if slot == entries.count { entries.append(entry) } else { entries[slot] = entry }
        index[key] = slot
        self.bytes += bytes
        policy.didInsert(slot: slot, key: key, bytes: bytes)
        return true
    }

    /// Removes the entry for `key`, if any.
    public mutating func remove(_ key: String) {
        if let slot = index[key] { remove(slot: slot) }
    }

    /// Removes every entry (and the policy's history).
    public mutating func removeAll() {
        index.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
        freeSlots.removeAll(keepingCapacity: true)
        bytes = 0
        policy.removeAll()
    }

    /// The slot holding `key`; for tests.
    func slot(forKey key: String) -> Int? { index[key] }

    /// The policy's state; for tests.
    var evictionPolicy: Policy { policy }

    private mutating func remove(slot: Int) {
        policy.didRemove(slot: slot)
        release(slot: slot)
    }

    private mutating func release(slot: Int) {
        guard let entry = entries[slot] else { preconditionFailure("released empty slot \(slot)") }
        entries[slot] = nil
        index[entry.key] = nil
        bytes -= entry.bytes
        freeSlots.append(slot)
    }
}

extension MemoryTier: Sendable where Value: Sendable, Policy: Sendable {}

extension MemoryTier.Entry: Sendable where Value: Sendable {}
