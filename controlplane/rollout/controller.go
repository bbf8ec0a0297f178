package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/periodic"
)

// Errors of the commands; the admin API maps them to 404 and 409.
var (
	ErrNoRollout = errors.New("no rollout on this route")
	ErrConflict  = errors.New("not possible in the rollout's phase")
	// ErrNotLeader refuses a command on a replica that does not own the
	// state: of several replicas, only the elected leader moves rollouts.
	ErrNotLeader = errors.New("this control plane replica is not the leader: send rollout commands to the leader (the holder of the meshguard-controlplane Lease)")
)

// Config configures a Controller.
type Config struct {
	// Dir holds state.json (the rollouts, reloaded at start; unless
	// State keeps them elsewhere) and audit.jsonl (every transition the
	// controller makes, appended).
	Dir string
	// State, when set, keeps the state instead of Dir/state.json: where
	// every replica of one control plane reads it (on Kubernetes, a
	// ConfigMap). The replica that is not Active never writes it; it
	// follows the state the active one saves (Replace).
	State StateStore
	// Authorizers are the admin addresses (host:port, or http(s):// URLs)
	// of every authorizer replica whose counts the gates judge.
	Authorizers []string
	// Discover, when set, finds the authorizers' admin addresses at each
	// judgement instead (replicas come and go: on Kubernetes, the ready
	// endpoints of their Service).
	Discover func(context.Context) []string
	// Interval between two judgements (default 10s).
	Interval time.Duration
	// Client fetches the counts (default: a client with a 5s timeout).
	Client *http.Client
	Log    *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Active, when set, says whether this replica owns the rollouts now
	// (of several replicas of one control plane, the elected leader): it
	// judges the gates, takes commands, and saves and audits the moves.
	// The others serve what the state says.
	Active func() bool
}

// Controller moves the mesh's rollouts through their stages. It owns the
// rollout state: the mesh file declares each rollout; the controller
// records where it stands, which the translator turns into the routes'
// context extensions (Overlay). It is safe for concurrent use.
type Controller struct {
	cfg   Config
	store *store
	log   *slog.Logger

	mu       sync.Mutex
	rollouts map[string]*Rollout // by route id
	seen     map[seenKey]seenCounts
	onChange func()
	last     *model.Mesh // the mesh of the last Sync
	owned    bool        // owner() at the last Run tick
}

// New loads the controller's state from cfg.Dir (created if missing). A
// state file that cannot be read is an error: starting over would forget
// where every rollout stands.
func New(cfg Config) (*Controller, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	st, err := openStore(cfg.Dir, cfg.State)
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, store: st, log: cfg.Log, rollouts: map[string]*Rollout{}, seen: map[seenKey]seenCounts{},
		owned: cfg.Active == nil}
	saved, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	for _, r := range saved.Rollouts {
		c.rollouts[r.Route] = r
	}
	for _, s := range saved.Seen {
		c.seen[s.Key] = s.Counts
	}
	return c, nil
}

// OnChange registers f, called (without the controller's lock) whenever a
// rollout's step changed and the mesh must be translated again.
func (c *Controller) OnChange(f func()) {
	c.mu.Lock()
	c.onChange = f
	c.mu.Unlock()
}

// owner reports whether this replica owns the state (Config.Active).
func (c *Controller) owner() bool { return c.cfg.Active == nil || c.cfg.Active() }

// Replace takes the state another replica saved (the leader's, as its
// StateStore delivers it): a replica that does not own the rollouts serves
// them where the owner moved them, with the owner's revisions, so the
// authorizers count every proxy's requests under one revision. The owner
// ignores it. OnChange is called when a step in force changed.
func (c *Controller) Replace(data []byte) error {
	st, err := parseState(data, c.store.state.String())
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.owner() {
		c.mu.Unlock()
		return nil
	}
	changed := len(st.Rollouts) != len(c.rollouts)
	next := make(map[string]*Rollout, len(st.Rollouts))
	for _, r := range st.Rollouts {
		next[r.Route] = r
		if old := c.rollouts[r.Route]; old == nil || old.Revision != r.Revision {
			changed = true
		}
	}
	c.rollouts = next
	c.seen = map[seenKey]seenCounts{}
	for _, s := range st.Seen {
		c.seen[s.Key] = s.Counts
	}
	f := c.onChange
	c.mu.Unlock()
	if changed && f != nil {
		f()
	}
	return nil
}

// Close releases the audit file.
func (c *Controller) Close() { c.store.close() }

// Sync reconciles the rollouts with a mesh: a rollout the file declares
// anew starts at its declared stage, a rollout whose declared stage,
// percent or steps changed moves there (the file wins over commands), a
// rollout removed from the file is forgotten. Gates are always taken from
// the file. It does not call OnChange: the caller is applying m.
//
// On a replica that does not own the rollouts Sync only remembers m: the
// owner's state (Replace) is what it serves, and it syncs m itself when it
// becomes the owner.
func (c *Controller) Sync(m *model.Mesh) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = m
	if !c.owner() {
		return
	}
	now := c.cfg.Now()
	declared := map[string]bool{}
	changed := false
	for i := range m.Spec.Services {
		svc := &m.Spec.Services[i]
		for j := range svc.Routes {
			rt := &svc.Routes[j]
			if rt.Rollout == nil {
				continue
			}
			declared[rt.ID] = true
			r := c.rollouts[rt.ID]
			switch {
			case r == nil || r.Current != rt.Policy || r.Candidate != rt.Rollout.Candidate:
				if r != nil {
					c.transition(r, now, ByMesh, "replaced by a new rollout in the mesh file", func() { r.Phase = RolledBack })
				}
				c.rollouts[rt.ID] = c.start(svc, rt, now)
				changed = true
			case r.Declared != declaration(rt.Rollout):
				plan := Plan(rt.Rollout)
				c.transition(r, now, ByMesh, "the mesh file declares stage "+rt.Rollout.Stage, func() {
					r.Plan, r.Index, r.Declared = plan, declaredIndex(rt.Rollout, plan), declaration(rt.Rollout)
					r.Phase, r.PausedBy = phaseAt(r), ""
				})
				changed = true
			}
			r = c.rollouts[rt.ID]
			r.Service, r.Gates = svc.Name, rt.Rollout.Gates
		}
	}
	for id, r := range c.rollouts {
		if !declared[id] {
			c.audit(Transition{Time: now, Route: id, From: r.position(), To: "removed", Phase: r.Phase, By: ByMesh,
				Reason: "the rollout is no longer in the mesh file", Revision: r.Revision})
			delete(c.rollouts, id)
			changed = true
		}
	}
	if changed {
		c.save()
	}
}

// start begins a rollout at its declared stage.
func (c *Controller) start(svc *model.Service, rt *model.Route, now time.Time) *Rollout {
	var id [4]byte
	_, _ = rand.Read(id[:])
	plan := Plan(rt.Rollout)
	r := &Rollout{Route: rt.ID, Service: svc.Name, Current: rt.Policy, Candidate: rt.Rollout.Candidate,
		Plan: plan, Index: declaredIndex(rt.Rollout, plan), Declared: declaration(rt.Rollout), ID: hex.EncodeToString(id[:])}
	r.Phase = phaseAt(r)
	c.transition(r, now, ByMesh, fmt.Sprintf("new rollout of %s in place of %s", r.Candidate, r.Current), func() {})
	return r
}

func phaseAt(r *Rollout) string {
	if r.Index == len(r.Plan)-1 {
		return Completed
	}
	return Progressing
}

// transition applies move to r as one audited step with a fresh revision
// and an empty count. Called with c.mu held.
func (c *Controller) transition(r *Rollout, now time.Time, by, reason string, move func()) {
	from := ""
	var counts *Counts
	if r.Revision != "" {
		from = r.position()
		if r.compared() {
			cc := r.Counts
			counts = &cc
		}
	}
	move()
	r.Seq++
	r.Revision = fmt.Sprintf("%s.%d", r.ID, r.Seq)
	r.Since, r.Reason, r.Counts, r.Verdict = now, reason, Counts{}, Verdict{}
	t := Transition{Time: now, Route: r.Route, From: from, To: r.position(), Phase: r.Phase, By: by, Reason: reason, Counts: counts, Revision: r.Revision}
	r.Transitions = append(r.Transitions, t)
	if len(r.Transitions) > maxHistory {
		r.Transitions = slices.Delete(r.Transitions, 0, len(r.Transitions)-maxHistory)
	}
	c.audit(t)
	c.log.Info("rollout moved", "route", r.Route, "from", from, "to", t.To, "phase", r.Phase, "by", by, "reason", reason, "revision", r.Revision)
}

func (c *Controller) audit(t Transition) {
	if !c.owner() {
		return // the owner records the same move
	}
	if err := c.store.appendAudit(t); err != nil {
		c.log.Error("rollout audit entry not written", "route", t.Route, "err", err)
	}
}

func (c *Controller) save() {
	if !c.owner() {
		return
	}
	if err := c.store.save(c.snapshot()); err != nil {
		c.log.Error("rollout state not saved; a restart would lose the latest moves", "err", err)
	}
}

func (c *Controller) snapshot() savedState {
	st := savedState{Version: 1}
	for _, id := range slices.Sorted(maps.Keys(c.rollouts)) {
		st.Rollouts = append(st.Rollouts, c.rollouts[id])
	}
	for k, v := range c.seen {
		st.Seen = append(st.Seen, savedSeen{Key: k, Counts: v})
	}
	slices.SortFunc(st.Seen, func(a, b savedSeen) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return st
}

// Overlay returns m with each route's rollout at the step in force, for
// the translator. m is not modified.
func (c *Controller) Overlay(m *model.Mesh) *model.Mesh {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := *m
	out.Spec.Services = slices.Clone(m.Spec.Services)
	for i := range out.Spec.Services {
		svc := &out.Spec.Services[i]
		svc.Routes = slices.Clone(svc.Routes)
		for j := range svc.Routes {
			// A state of another declaration (the owner's, not yet synced
			// with this mesh) is not applied: the route serves its
			// declared stage until the owner catches up.
			if rt := &svc.Routes[j]; rt.Rollout != nil {
				if r := c.rollouts[rt.ID]; r != nil && r.Current == rt.Policy && r.Candidate == rt.Rollout.Candidate && r.Declared == declaration(rt.Rollout) {
					rt.Step = r.ModelStep()
				}
			}
		}
	}
	return &out
}

// takeOver makes a replica that just became the owner continue from the
// state it followed: synced with its latest mesh, saved (so the other
// replicas follow it), and applied.
func (c *Controller) takeOver() {
	c.mu.Lock()
	if c.last != nil {
		c.mu.Unlock()
		c.Sync(c.last) // saves what it changes
		c.mu.Lock()
	}
	c.save()
	f := c.onChange
	c.mu.Unlock()
	if f != nil {
		f()
	}
}

// Status returns a copy of every rollout, sorted by route.
func (c *Controller) Status() []Rollout {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Rollout, 0, len(c.rollouts))
	for _, id := range slices.Sorted(maps.Keys(c.rollouts)) {
		r := *c.rollouts[id]
		r.Plan, r.Transitions = slices.Clone(r.Plan), slices.Clone(r.Transitions)
		out = append(out, r)
	}
	return out
}

// Get returns one rollout.
func (c *Controller) Get(route string) (Rollout, error) {
	for _, r := range c.Status() {
		if r.Route == route {
			return r, nil
		}
	}
	return Rollout{}, fmt.Errorf("%w %q", ErrNoRollout, route)
}

// Run judges the rollouts every interval until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	periodic.Every(ctx, c.cfg.Interval, func(ctx context.Context) {
		if !c.owner() {
			c.owned = false
			return
		}
		if !c.owned {
			c.owned = true
			c.takeOver()
		}
		c.Tick(ctx)
	})
}

// Tick reads the counts of every compared rollout from the authorizers,
// judges the gates and moves what they decide: a failed gate rolls back,
// passing gates promote one step, counts that cannot be read pause (and
// resume once they can). A rollout an operator paused is judged but not
// moved.
func (c *Controller) Tick(ctx context.Context) {
	c.mu.Lock()
	want := map[string]string{} // route → revision of compared rollouts
	for id, r := range c.rollouts {
		if r.compared() {
			want[id] = r.Revision
		}
	}
	c.mu.Unlock()
	if len(want) == 0 {
		return
	}
	reads, fetchErr := c.fetch(ctx)

	c.mu.Lock()
	now := c.cfg.Now()
	moved := false
	c.record(reads, want)
	for _, id := range slices.Sorted(maps.Keys(c.rollouts)) {
		r := c.rollouts[id]
		if !r.compared() || r.Revision != want[id] {
			continue // moved by a command since the read began
		}
		r.Counts = c.total(r)
		v := Judge(r.Gates, r.Counts, now.Sub(r.Since))
		switch {
		case fetchErr != nil && r.Gates == nil:
			v.Reason = "counts incomplete: " + fetchErr.Error()
		case fetchErr != nil && v.Result != VerdictFail:
			// A failure on the counts read is certain whatever the others
			// say; anything else needs every authorizer's counts.
			v = Verdict{VerdictUnavailable, fetchErr.Error()}
		}
		r.Verdict = v
		moved = c.act(r, v, now) || moved
	}
	c.prune()
	c.save()
	f := c.onChange
	c.mu.Unlock()
	if moved && f != nil {
		f()
	}
}

// act moves r as the verdict says. Called with c.mu held.
func (c *Controller) act(r *Rollout, v Verdict, now time.Time) bool {
	if r.Phase == Paused && r.PausedBy == ByController && v.Result != VerdictUnavailable {
		c.transition(r, now, ByController, "counts readable again", func() { r.Phase, r.PausedBy = Progressing, "" })
		// The resumed step starts over with its new revision: judge it next time.
		return true
	}
	if r.Phase != Progressing {
		return false
	}
	switch v.Result {
	case VerdictFail:
		c.transition(r, now, ByController, "gate failed: "+v.Reason, func() { r.Phase = RolledBack })
	case VerdictPass:
		c.transition(r, now, ByController, "gates passed: "+v.Reason, func() { r.Index++; r.Phase = phaseAt(r) })
	case VerdictUnavailable:
		c.transition(r, now, ByController, "gates cannot be judged: "+v.Reason, func() { r.Phase, r.PausedBy = Paused, ByController })
	default:
		return false
	}
	return true
}

// Command moves a rollout by hand: "promote" (one step on, gates or not),
// "rollback", "pause" or "resume" (a rolled-back rollout restarts at its
// first step). actor names who asked, for the audit.
func (c *Controller) Command(verb, route, actor, reason string) (Rollout, error) {
	if !c.owner() {
		return Rollout{}, ErrNotLeader
	}
	c.mu.Lock()
	r := c.rollouts[route]
	if r == nil {
		c.mu.Unlock()
		return Rollout{}, fmt.Errorf("%w %q", ErrNoRollout, route)
	}
	by := byOperator + actor
	if reason == "" {
		reason = verb + " by command"
	}
	now := c.cfg.Now()
	var err error
	switch verb {
	case "promote":
		switch r.Phase {
		case Completed:
			err = fmt.Errorf("%w: the candidate is already enforced", ErrConflict)
		case RolledBack:
			err = fmt.Errorf("%w: the rollout was rolled back; resume restarts it", ErrConflict)
		default:
			c.transition(r, now, by, reason, func() { r.Index++; r.Phase, r.PausedBy = phaseAt(r), "" })
		}
	case "rollback":
		if r.Phase == RolledBack {
			err = fmt.Errorf("%w: already rolled back", ErrConflict)
		} else {
			c.transition(r, now, by, reason, func() { r.Phase, r.PausedBy = RolledBack, "" })
		}
	case "pause":
		if r.Phase != Progressing {
			err = fmt.Errorf("%w: only a progressing rollout can be paused (it is %s)", ErrConflict, r.Phase)
		} else {
			c.transition(r, now, by, reason, func() { r.Phase, r.PausedBy = Paused, by })
		}
	case "resume":
		switch r.Phase {
		case Paused:
			c.transition(r, now, by, reason, func() { r.Phase, r.PausedBy = Progressing, "" })
		case RolledBack:
			c.transition(r, now, by, reason, func() { r.Index, r.Phase = 0, Progressing })
		default:
			err = fmt.Errorf("%w: only a paused or rolled-back rollout can be resumed (it is %s)", ErrConflict, r.Phase)
		}
	default:
		err = fmt.Errorf("unknown command %q: want promote, rollback, pause or resume", verb)
	}
	if err != nil {
		c.mu.Unlock()
		return Rollout{}, err
	}
	c.save()
	out := *r
	out.Plan, out.Transitions = slices.Clone(r.Plan), slices.Clone(r.Transitions)
	f := c.onChange
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return out, nil
}
