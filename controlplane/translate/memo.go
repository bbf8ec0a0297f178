package translate

import "sync"

// Memo shares translation results between the workloads of one mesh
// version: what depends only on a service (its route configuration, its HTTP
// connection manager, its dependencies' listeners, clusters and endpoints) is
// built — and validated, and later marshalled — once, not once per
// workload. A Memo belongs to one *model.Mesh; make a new one per version.
// It is safe for concurrent use.
type Memo struct {
	mu sync.Mutex
	m  map[string]any
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{m: map[string]any{}} }

// memoize returns the value built for key, building it on first use. Results
// of a failed build are not kept.
func memoize[T any](t *translator, key string, build func() T) T {
	if t.memo == nil {
		return build()
	}
	t.memo.mu.Lock()
	v, ok := t.memo.m[key]
	t.memo.mu.Unlock()
	if ok {
		return v.(T)
	}
	out := build()
	if t.err != nil {
		return out
	}
	t.memo.mu.Lock()
	defer t.memo.mu.Unlock()
	if prev, ok := t.memo.m[key]; ok {
		return prev.(T)
	}
	t.memo.m[key] = out
	return out
}
