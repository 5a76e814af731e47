/// S3-FIFO's ghost queue: a FIFO of the key hashes (no values) of entries recently evicted from the
/// small queue, bounded by the bytes those entries occupied.
///
/// Hashes stand in for keys as in the paper: a collision only admits an entry straight to the main
/// queue, it never serves a wrong value. Removal is lazy (a stale FIFO item is skipped when it reaches
/// the front) and the FIFO is compacted when stale items pile up, so every operation is O(1) amortized.
struct GhostQueue {
    private struct Item {
        var hash: Int
        var sequence: UInt64
        var bytes: Int
    }

    /// The bound on ``bytes``.
    let maxBytes: Int
    /// Bytes of the entries the ghost currently remembers.
    private(set) var bytes = 0
    private var members: [Int: (sequence: UInt64, bytes: Int)] = [:]
    private var fifo: [Item] = []
    private var head = 0
    private var nextSequence: UInt64 = 0

    /// A ghost remembering at most `maxBytes` bytes' worth of evicted entries.
    init(maxBytes: Int) {
        self.maxBytes = max(0, maxBytes)
    }

    /// Number of hashes remembered.
    var count: Int { members.count }

    /// Remembers `hash` of an evicted entry of `bytes` bytes, forgetting the oldest ones beyond the bound.
    mutating func insert(_ hash: Int, bytes: Int) {
        guard bytes <= maxBytes else { return }
        if let old = members[hash] { self.bytes -= old.bytes }
        nextSequence += 1
        members[hash] = (nextSequence, bytes)
        fifo.append(Item(hash: hash, sequence: nextSequence, bytes: bytes))
        self.bytes += bytes
        while self.bytes > maxBytes { popOldest() }
        compactIfNeeded()
    }

    /// Forgets `hash`; returns whether it was remembered (a ghost hit).
    mutating func remove(_ hash: Int) -> Bool {
        guard let member = members.removeValue(forKey: hash) else { return false }
        bytes -= member.bytes
        return true
    }

    /// Forgets everything, keeping capacity.
    mutating func removeAll() {
        members.removeAll(keepingCapacity: true)
        fifo.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }

    private mutating func popOldest() {
        let item = fifo[head]
        head += 1
        if members[item.hash]?.sequence == item.sequence {
            members[item.hash] = nil
            bytes -= item.bytes
        }
    }

    private mutating func compactIfNeeded() {
        let pending = fifo.count - head
        if pending > 2 * members.count + 1024 {
            fifo = fifo[head...].filter { members[$0.hash]?.sequence == $0.sequence }
            head = 0
        } else if head >= 1024 && head * 2 >= fifo.count {
            fifo.removeFirst(head)
            head = 0
        }
    }
}
