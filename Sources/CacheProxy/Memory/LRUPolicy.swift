/// Least recently used: every hit moves the entry to the head; the tail is evicted.
public struct LRUPolicy: EvictionPolicy, Sendable {
    private var links = SlotLinks()
    private var list = SlotList()

    /// An LRU policy; LRU needs no size information, so `maxBytes` is unused.
    public init(maxBytes: Int) {}

    public mutating func didInsert(slot: Int, key: String, bytes: Int) {
        links.pushFront(slot, onto: &list)
    }

    public mutating func didAccess(slot: Int) {
        links.moveToFront(slot, in: &list)
    }

    public mutating func didRemove(slot: Int) {
        links.unlink(slot, from: &list)
    }

    public mutating func nextVictim() -> Int? {
        let slot = list.tail
        guard slot >= 0 else { return nil }
        links.unlink(slot, from: &list)
        return slot
    }

    public mutating func removeAll() {
        links.removeAll()
        list = SlotList()
    }
}
