/// The ends and length of one doubly linked list threaded through ``SlotLinks``.
struct SlotList {
    /// The most recently pushed slot, or -1 when empty.
    var head = -1
    /// The oldest slot (the eviction end), or -1 when empty.
    var tail = -1
    /// Number of slots in the list.
    var count = 0
}

/// Previous/next pointers for slot numbers, shared by any number of ``SlotList``s (a slot is in at
/// most one list at a time). Every operation is O(1); storage grows to the highest slot number seen.
struct SlotLinks {
    private var previous: [Int] = []
    private var next: [Int] = []

    /// Puts `slot` (not currently in any list) at the head of `list`.
    mutating func pushFront(_ slot: Int, onto list: inout SlotList) {
        while next.count <= slot {
            previous.append(-1)
            next.append(-1)
        }
        previous[slot] = -1
        next[slot] = list.head
        if list.head >= 0 {
            previous[list.head] = slot
        } else {
            list.tail = slot
        }
        list.head = slot
        list.count += 1
    }

    /// Takes `slot` out of `list`, which must contain it.
    mutating func unlink(_ slot: Int, from list: inout SlotList) {
        let before = previous[slot]
        let after = next[slot]
        if before >= 0 { next[before] = after } else { list.head = after }
        if after >= 0 { previous[after] = before } else { list.tail = before }
        previous[slot] = -1
        next[slot] = -1
        list.count -= 1
    }

    /// Moves `slot`, already in `list`, to its head.
    mutating func moveToFront(_ slot: Int, in list: inout SlotList) {
        guard list.head != slot else { return }
        unlink(slot, from: &list)
        pushFront(slot, onto: &list)
    }

    /// Forgets every link, keeping capacity.
    mutating func removeAll() {
        previous.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
    }
}
