package extauthz

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshguard/meshguard/internal/contract"
)

// rolloutKey identifies one rollout step as the control plane configured
// it. The step id alone should determine the rest; keying by all of it
// keeps counts of two different configurations apart even if a step id
// were reused.
type rolloutKey struct {
	route, revision, set, candidate, stage string
	canary                                 int
}

// rolloutCounts are one step's counters. Reads and increments are atomic;
// the Prometheus children are resolved once, not per request.
type rolloutCounts struct {
	key      rolloutKey
	outcomes [len(outcomes)]atomic.Uint64
	enforced atomic.Uint64 // requests for which the candidate was enforced
	prom     [len(outcomes)]prometheus.Counter
}

// maxRolloutSteps bounds the steps counted at once. Route ids and step ids
// come from the control plane's configuration, not from clients, but a
// long-lived authorizer sees every step of every rollout: past the bound,
// the oldest step is forgotten (its Prometheus series are kept while
// another step of the same route and sets is counted).
const maxRolloutSteps = 1024

// rolloutTable holds the rollout counters, bounded.
type rolloutTable struct {
	instance string // random per process: a controller detects restarts by it
	started  time.Time
	metric   *prometheus.CounterVec // nil without metrics

	mu    sync.RWMutex
	steps map[rolloutKey]*rolloutCounts
	order []rolloutKey // insertion order, for eviction
	// byRevision finds a step by its revision alone, the one field that
	// normally tells steps apart: hashing one string instead of six
	// fields. A hit is used only when its whole key matches.
	byRevision map[string]*rolloutCounts
}

func newRolloutTable(metric *prometheus.CounterVec) *rolloutTable {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &rolloutTable{instance: hex.EncodeToString(id[:]), started: time.Now().UTC(), metric: metric, steps: map[rolloutKey]*rolloutCounts{},
		byRevision: map[string]*rolloutCounts{}}
}

// count records one compared request of a rollout route.
func (t *rolloutTable) count(r *Route, o *RolloutOutcome) {
	k := rolloutKey{route: r.ID, revision: r.Rollout, set: r.PolicySet, candidate: r.Candidate, stage: r.Stage, canary: r.Canary}
	t.mu.RLock()
	c := t.byRevision[k.revision]
	if c == nil || c.key != k {
		c = t.steps[k]
	}
	t.mu.RUnlock()
	if c == nil {
		c = t.add(k)
	}
	c.outcomes[o.outcome].Add(1)
	if o.CandidateEnforced {
		c.enforced.Add(1)
	}
	if p := c.prom[o.outcome]; p != nil {
		p.Inc()
	}
}

func (t *rolloutTable) add(k rolloutKey) *rolloutCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.steps[k]; c != nil {
		return c
	}
	if len(t.order) >= maxRolloutSteps {
		old := t.order[0]
		t.order = slices.Delete(t.order, 0, 1)
		if t.byRevision[old.revision] == t.steps[old] {
			delete(t.byRevision, old.revision)
		}
		delete(t.steps, old)
		t.dropSeries(old)
	}
	c := &rolloutCounts{key: k}
	if t.metric != nil {
		for i, o := range outcomes {
			c.prom[i] = t.metric.WithLabelValues(k.route, k.set, k.candidate, o)
		}
	}
	t.steps[k] = c
	t.byRevision[k.revision] = c
	t.order = append(t.order, k)
	return c
}

// dropSeries deletes the Prometheus series of a forgotten step unless a
// step still counted shares them. Called with t.mu held.
func (t *rolloutTable) dropSeries(k rolloutKey) {
	if t.metric == nil {
		return
	}
	for other := range t.steps {
		if other.route == k.route && other.set == k.set && other.candidate == k.candidate {
			return
		}
	}
	for _, o := range outcomes {
		t.metric.DeleteLabelValues(k.route, k.set, k.candidate, o)
	}
}

// RolloutStatus is served at /v1/rollouts: the authorizer's counts for
// every rollout step it has seen since it started (at most 1,024 steps).
// Counts are cumulative per instance; a controller summing several
// authorizers tells restarts apart by Instance.
type RolloutStatus struct {
	Instance string            `json:"instance"`
	Started  time.Time         `json:"started"`
	Steps    []RolloutStepSeen `json:"steps"`
}

// RolloutStepSeen is one rollout step's counts on this authorizer.
type RolloutStepSeen struct {
	Route     string `json:"route"`
	Revision  string `json:"revision"`
	PolicySet string `json:"policy_set"`
	Candidate string `json:"candidate"`
	Stage     string `json:"stage"`
	Canary    string `json:"canary,omitempty"`
	// Requests is the sum of the four outcomes: every request both sets
	// were evaluated for.
	Requests    uint64 `json:"requests"`
	Same        uint64 `json:"same"`
	AllowToDeny uint64 `json:"allow_to_deny"`
	DenyToAllow uint64 `json:"deny_to_allow"`
	Errors      uint64 `json:"errors"`
	// CandidateEnforced counts the requests the candidate decided.
	CandidateEnforced uint64 `json:"candidate_enforced"`
}

// status copies the counts, sorted by route and step.
func (t *rolloutTable) status() RolloutStatus {
	t.mu.RLock()
	st := RolloutStatus{Instance: t.instance, Started: t.started, Steps: make([]RolloutStepSeen, 0, len(t.steps))}
	for _, c := range t.steps {
		s := RolloutStepSeen{
			Route: c.key.route, Revision: c.key.revision, PolicySet: c.key.set, Candidate: c.key.candidate, Stage: c.key.stage,
			Same: c.outcomes[outcomeSame].Load(), AllowToDeny: c.outcomes[outcomeAllowToDeny].Load(),
			DenyToAllow: c.outcomes[outcomeDenyToAllow].Load(), Errors: c.outcomes[outcomeError].Load(),
			CandidateEnforced: c.enforced.Load(),
		}
		if c.key.stage == contract.StageCanary {
			s.Canary = contract.FormatPercent(c.key.canary)
		}
		s.Requests = s.Same + s.AllowToDeny + s.DenyToAllow + s.Errors
		st.Steps = append(st.Steps, s)
	}
	t.mu.RUnlock()
	slices.SortFunc(st.Steps, func(a, b RolloutStepSeen) int {
		if c := strings.Compare(a.Route, b.Route); c != 0 {
			return c
		}
		return strings.Compare(a.Revision, b.Revision)
	})
	return st
}
