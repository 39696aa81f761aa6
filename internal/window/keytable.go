package window

// keyTable indexes a keyspace's slab by key hash: open addressing with
// linear probing over 16-byte slots, at most half full. A lookup is
// usually one cache line, where a Go map of 16-byte keys costs a control
// word, a slot (often another line) and a generic hash of the key; the
// table's hash is the key hash itself.
//
// A slot holds the first half of the 128-bit key hash; the second half is
// checked in the key's state, which the caller reads next anyway.
type keyTable struct {
	slots []keySlot // power-of-two length
	n     int
}

type keySlot struct {
	h  uint64 // keyHash[0], never 0 (see normHash); 0 is an empty slot
	ki int32  // slab index
}

// normHash keeps 0 free to mark empty slots.
func normHash(h keyHash) keyHash {
	if h[0] == 0 {
		h[0] = 1
	}
	return h
}

func (t *keyTable) len() int { return t.n }

// find returns the slab index of the key with hash h, or -1.
func (t *keyTable) find(h keyHash, keys []keyState) int32 {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	for i := h[0] & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.h == 0 {
			return -1
		}
		if s.h == h[0] && keys[s.ki].hash[1] == h[1] {
			return s.ki
		}
	}
}

// probe returns the slab index in the first slot holding h0 or, at an
// empty slot, -1, with the slot's position; resume continues after a slot
// whose key did not match on the second hash half. Split so that callers
// can read the slots of several tables before any key state (see
// Store.findKeys).
func (t *keyTable) probe(h0 uint64) (int32, uint64) {
	if len(t.slots) == 0 {
		return -1, 0
	}
	mask := uint64(len(t.slots) - 1)
	for i := h0 & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.h == 0 {
			return -1, i
		}
		if s.h == h0 {
			return s.ki, i
		}
	}
}

// confirm checks a probe's answer against the second hash half, and
// probes further in the (2^-64 rare) case it belongs to another key.
func (t *keyTable) confirm(h keyHash, ki int32, at uint64, keys []keyState) int32 {
	if ki < 0 || keys[ki].hash[1] == h[1] {
		return ki
	}
	mask := uint64(len(t.slots) - 1)
	for i := (at + 1) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.h == 0 {
			return -1
		}
		if s.h == h[0] && keys[s.ki].hash[1] == h[1] {
			return s.ki
		}
	}
}

func (t *keyTable) insert(h uint64, ki int32) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	t.place(h, ki)
	t.n++
}

func (t *keyTable) place(h uint64, ki int32) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].h != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = keySlot{h: h, ki: ki}
}

func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]keySlot, max(16, 2*len(old)))
	for _, s := range old {
		if s.h != 0 {
			t.place(s.h, s.ki)
		}
	}
}

// remove deletes the slot of slab index ki (whose hash is h) and shifts
// back the entries after it that would otherwise become unreachable
// (Knuth's algorithm R), so that no tombstones accumulate.
func (t *keyTable) remove(h uint64, ki int32) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].ki != ki || t.slots[i].h != h {
		if t.slots[i].h == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for {
		t.slots[i] = keySlot{}
		j := i
		for {
			j = (j + 1) & mask
			s := t.slots[j]
			if s.h == 0 {
				t.n--
				return
			}
			// s may move into the hole at i unless its home lies
			// cyclically in (i, j].
			home := s.h & mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = s
				i = j
				break
			}
		}
	}
}
