// Package memo holds bounded maps of immutable values computed from their
// keys (Cedar records, entities, evaluation results). When full, a map
// starts over: memory stays fixed whatever callers send, and the values in
// use are back after one build each. Reads take a shared lock only.
package memo

import "sync"

// Map is a bounded map; it is safe for concurrent use.
type Map[K comparable, V any] struct {
	mu  sync.RWMutex
	m   map[K]V
	max int
}

// New returns a map of at most max entries.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{m: map[K]V{}, max: max}
}

// Get returns the value stored under k.
func (c *Map[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	return v, ok
}

// Put stores v under k, first emptying the map if it is full.
func (c *Map[K, V]) Put(k K, v V) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = v
	c.mu.Unlock()
}

// GetOrBuild returns the value under k, building and storing it if absent.
func (c *Map[K, V]) GetOrBuild(k K, build func() V) V {
	if v, ok := c.Get(k); ok {
		return v
	}
	v := build()
	c.Put(k, v)
	return v
}

// Len is the number of entries.
func (c *Map[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// GetBytes is Get for a key held in a byte slice, without converting it
// to a string (the compiler looks m[string(key)] up in place).
func GetBytes[V any](c *Map[string, V], key []byte) (V, bool) {
	c.mu.RLock()
	v, ok := c.m[string(key)]
	c.mu.RUnlock()
	return v, ok
}
