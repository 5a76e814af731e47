/// S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction", SOSP 2023).
///
/// New entries enter a small FIFO that aims at 10% of the bytes; the rest is a main FIFO. Hits only
/// bump a 2-bit frequency (capped at 3), so a hit moves nothing. When room is needed and the small
/// queue holds at least its share (or main is empty), its oldest entry leaves: to main if it was read
/// since insertion (frequency reset to 0), otherwise out of the cache with its key hash recorded in a
/// ghost FIFO (bounded by main's bytes). An entry whose key is in the ghost enters main directly.
/// Otherwise main's oldest entry leaves if its frequency is 0, or is reinserted at main's head with
/// its frequency decremented. Each eviction is O(1) amortized: a reinsertion spends a hit.
///
/// Departure from the paper's pseudo-code: it promotes from small on frequency > 1; like the authors'
/// blog and most implementations we promote on any hit (frequency > 0).
public struct S3FIFOPolicy: EvictionPolicy, Sendable {
    /// Where a slot lives; exposed to tests.
    enum Queue: UInt8 {
        case none, small, main
    }

    private struct Node {
        var bytes = 0
        var keyHash = 0
        var frequency: UInt8 = 0
        var queue = Queue.none
    }

    /// Frequency cap (2 bits).
    static let maxFrequency: UInt8 = 3

    private var links = SlotLinks()
    private var nodes: [Node] = []
    private var small = SlotList()
    private var main = SlotList()
    private var smallBytes = 0
    private var ghost: GhostQueue
    private let smallTarget: Int

    /// An S3-FIFO policy for `maxBytes`: small queue 10% of it, ghost bounded by the other 90%.
    public init(maxBytes: Int) {
        smallTarget = maxBytes / 10
        ghost = GhostQueue(maxBytes: maxBytes - smallTarget)
    }

    /// The queue holding `slot`; for tests.
    func queue(ofSlot slot: Int) -> Queue {
        slot < nodes.count ? nodes[slot].queue : .none
    }

    /// Number of key hashes in the ghost queue; for tests.
    var ghostCount: Int { ghost.count }

    public mutating func didInsert(slot: Int, key: String, bytes: Int) {
        while nodes.count <= slot { nodes.append(Node()) }
        let hash = key.hashValue
        if ghost.remove(hash) {
            nodes[slot] = Node(bytes: bytes, keyHash: hash, frequency: 0, queue: .main)
            links.pushFront(slot, onto: &main)
        } else {
            nodes[slot] = Node(bytes: bytes, keyHash: hash, frequency: 0, queue: .small)
            links.pushFront(slot, onto: &small)
            smallBytes += bytes
        }
    }

    public mutating func didAccess(slot: Int) {
        if nodes[slot].frequency < Self.maxFrequency { nodes[slot].frequency += 1 }
    }

    public mutating func didRemove(slot: Int) {
        switch nodes[slot].queue {
        case .small:
            links.unlink(slot, from: &small)
            smallBytes -= nodes[slot].bytes
        case .main:
            links.unlink(slot, from: &main)
        case .none:
            preconditionFailure("S3-FIFO asked to remove untracked slot \(slot)")
        }
        nodes[slot].queue = .none
    }

    public mutating func nextVictim() -> Int? {
        while true {
            if small.count > 0 && (smallBytes >= smallTarget || main.count == 0) {
                let slot = small.tail
                links.unlink(slot, from: &small)
                smallBytes -= nodes[slot].bytes
                if nodes[slot].frequency > 0 {
                    nodes[slot].frequency = 0
                    nodes[slot].queue = .main
                    links.pushFront(slot, onto: &main)
                    continue
                }
                nodes[slot].queue = .none
                ghost.insert(nodes[slot].keyHash, bytes: nodes[slot].bytes)
                return slot
            }
            let slot = main.tail
            guard slot >= 0 else { return nil }
            if nodes[slot].frequency > 0 {
                nodes[slot].frequency -= 1
                links.moveToFront(slot, in: &main)
                continue
            }
            links.unlink(slot, from: &main)
            nodes[slot].queue = .none
            return slot
        }
    }

    public mutating func removeAll() {
        links.removeAll()
        nodes.removeAll(keepingCapacity: true)
        small = SlotList()
        main = SlotList()
        smallBytes = 0
        ghost.removeAll()
    }
}
