package extauthz

import (
	"slices"
	"sync"
	"time"
)

// maxRecentDenies bounds the denies an authorizer keeps for status pages:
// the newest, whatever the request rate.
const maxRecentDenies = 100

// RecentDeny is one recent denial, as GET /v1/denies serves it: what the
// decision log has, without the query string or any header.
type RecentDeny struct {
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id"`
	Route      string    `json:"route,omitempty"`
	PolicySet  string    `json:"policy_set,omitempty"`
	Status     int       `json:"status"`
	Reason     string    `json:"reason"`
	Principal  string    `json:"principal,omitempty"`
	Method     string    `json:"method,omitempty"`
	Path       string    `json:"path,omitempty"`
}

// RecentDenies is the body of GET /v1/denies, newest first.
type RecentDenies struct {
	Denies []RecentDeny `json:"denies"`
}

// recentDenies is a ring of the latest denials.
type recentDenies struct {
	mu   sync.Mutex
	ring [maxRecentDenies]RecentDeny
	next int
	n    int
}

func (r *recentDenies) add(d RecentDeny) {
	r.mu.Lock()
	r.ring[r.next] = d
	r.next = (r.next + 1) % maxRecentDenies
	r.n = min(r.n+1, maxRecentDenies)
	r.mu.Unlock()
}

// list returns the denials kept, newest first.
func (r *recentDenies) list() []RecentDeny {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecentDeny, 0, r.n)
	for i := range r.n {
		out = append(out, r.ring[(r.next-1-i+maxRecentDenies)%maxRecentDenies])
	}
	return slices.Clip(out)
}
