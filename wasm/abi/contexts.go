package abi

// contextTable maps stream context ids to their contexts. Hosts number
// contexts sequentially, so live ids fall in a moving window: a
// direct-mapped slot per id (id modulo the table size) finds almost every
// context without hashing, which Go maps do slowly inside a wasm module.
// An id whose slot is taken by a still-live older stream (a long-lived
// one, or more live streams than slots) goes to an overflow map, so the
// table stays a fixed size whatever the traffic.
type contextTable struct {
	slots    [contextSlots]contextSlot
	overflow map[uint32]HTTPContext
}

const contextSlots = 1024 // a power of two

type contextSlot struct {
	id uint32 // 0: free (hosts never give a stream context id 0)
	c  HTTPContext
}

func (t *contextTable) put(id uint32, c HTTPContext) {
	s := &t.slots[id%contextSlots]
	if s.id == 0 || s.id == id {
		*s = contextSlot{id, c}
		return
	}
	if t.overflow == nil {
		t.overflow = map[uint32]HTTPContext{}
	}
	t.overflow[id] = c
}

func (t *contextTable) get(id uint32) (HTTPContext, bool) {
	if s := &t.slots[id%contextSlots]; s.id == id && id != 0 {
		return s.c, true
	}
	c, ok := t.overflow[id]
	return c, ok
}

// remove deletes id and returns its context.
func (t *contextTable) remove(id uint32) (HTTPContext, bool) {
	if s := &t.slots[id%contextSlots]; s.id == id && id != 0 {
		c := s.c
		*s = contextSlot{}
		return c, true
	}
	c, ok := t.overflow[id]
	delete(t.overflow, id)
	return c, ok
}
