package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/hashchain"
)

const meshDoc = `apiVersion: meshguard.dev/v1alpha1
kind: Mesh
metadata: {name: m}
spec:
  trustDomain: example.org
  authz: {address: 127.0.0.1:9191}
  services:
    - name: api
      port: 9090
      policy: api
      routes:
        - id: api/read
          match: {prefix: /}
          rollout: ROLLOUT
        - id: api/plain
          match: {prefix: /plain}
      workloads: [{name: api-0, address: 10.0.0.2}]
`

func mesh(t *testing.T, rollout string) *model.Mesh {
	t.Helper()
	doc := strings.Replace(meshDoc, "ROLLOUT", rollout, 1)
	if rollout == "" {
		doc = strings.Replace(meshDoc, "          rollout: ROLLOUT\n", "", 1)
	}
	m, err := model.Parse([]byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const gated = `{candidate: api-v2, stage: shadow, percent: 10, gates: {minRequests: 100, maxAllowToDeny: 1, maxErrors: 0}}`

// fakeAuthz serves an authorizer's /v1/rollouts with counts the test sets.
type fakeAuthz struct {
	*httptest.Server
	mu       sync.Mutex
	instance string
	steps    map[string]Counts // revision → counts, for route api/read
	down     bool
}

func newFakeAuthz(t *testing.T) *fakeAuthz {
	f := &fakeAuthz{instance: "i1", steps: map[string]Counts{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.down || r.URL.Path != "/v1/rollouts" {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		type step struct {
			Route     string `json:"route"`
			Revision  string `json:"revision"`
			PolicySet string `json:"policy_set"`
			Candidate string `json:"candidate"`
			Counts
		}
		st := struct {
			Instance string `json:"instance"`
			Steps    []step `json:"steps"`
		}{Instance: f.instance}
		for rev, c := range f.steps {
			st.Steps = append(st.Steps, step{"api/read", rev, "api", "api-v2", c})
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAuthz) set(rev string, c Counts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps[rev] = c
}

func (f *fakeAuthz) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// clock is a settable clock: dwell times are set, never waited for.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	t       *testing.T
	dir     string
	authz   []*fakeAuthz
	clock   *clock
	c       *Controller
	changes int
}

func newEnv(t *testing.T, authorizers int) *env {
	e := &env{t: t, dir: t.TempDir(), clock: &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}}
	for range authorizers {
		e.authz = append(e.authz, newFakeAuthz(t))
	}
	e.open()
	return e
}

func (e *env) open() {
	var urls []string
	for _, a := range e.authz {
		urls = append(urls, a.URL)
	}
	c, err := New(Config{Dir: e.dir, Authorizers: urls, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	c.OnChange(func() { e.changes++ })
	e.t.Cleanup(c.Close)
	e.c = c
}

func (e *env) get() Rollout {
	e.t.Helper()
	r, err := e.c.Get("api/read")
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) want(phase, step string) Rollout {
	e.t.Helper()
	r := e.get()
	if r.Phase != phase || r.Step().String() != step {
		e.t.Fatalf("rollout is %s at %s (%s), want %s at %s", r.Phase, r.Step(), r.Reason, phase, step)
	}
	return r
}

// audit reads the audit trail, which must be one intact hash chain.
func (e *env) audit() []Transition {
	e.t.Helper()
	f, err := os.Open(AuditPath(e.dir))
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, _, brk, err := hashchain.Verify(f, nil); brk != nil || err != nil {
		e.t.Fatalf("audit trail chain: %v %v", brk, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		e.t.Fatal(err)
	}
	var out []Transition
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var tr Transition
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, tr)
	}
	return out
}

func stepOf(t *testing.T, m *model.Mesh, route string) *model.RolloutStep {
	t.Helper()
	for _, s := range m.Spec.Services {
		for _, r := range s.Routes {
			if r.ID == route {
				return r.Step
			}
		}
	}
	t.Fatalf("no route %s", route)
	return nil
}

func TestANewRolloutStartsAtTheDeclaredStage(t *testing.T) {
	e := newEnv(t, 1)
	m := mesh(t, gated)
	e.c.Sync(m)
	r := e.want(Progressing, "shadow")
	if r.Current != "api" || r.Candidate != "api-v2" || r.Revision == "" || r.Transitions[0].By != ByMesh {
		t.Fatalf("rollout: %+v", r)
	}
	over := e.c.Overlay(m)
	st := stepOf(t, over, "api/read")
	if st == nil || st.Policy != "api" || st.Candidate != "api-v2" || st.Stage != contract.StageShadow || st.Revision != r.Revision {
		t.Fatalf("overlaid step: %+v", st)
	}
	if stepOf(t, m, "api/read") != nil || stepOf(t, over, "api/plain") != nil {
		t.Fatal("Overlay changed the input mesh or a route without a rollout")
	}
}

func TestGatesPromoteStepByStepToEnforce(t *testing.T) {
	e := newEnv(t, 2)
	e.c.Sync(mesh(t, gated))
	rev := e.get().Revision
	// 50 requests on each authorizer: 100 in all, no change.
	e.authz[0].set(rev, Counts{Requests: 50, Same: 50})
	e.authz[1].set(rev, Counts{Requests: 49, Same: 49})
	e.c.Tick(context.Background())
	if r := e.want(Progressing, "shadow"); r.Counts.Requests != 99 || r.Verdict.Result != VerdictWait {
		t.Fatalf("99 requests: %+v %+v", r.Counts, r.Verdict)
	}
	e.authz[1].set(rev, Counts{Requests: 50, Same: 49, AllowToDeny: 1})
	e.c.Tick(context.Background())
	canary := e.want(Progressing, "canary 10%")
	if canary.Revision == rev || canary.Counts.Requests != 0 || e.changes != 1 {
		t.Fatalf("a promotion starts a new revision with new counts: %+v (changes %d)", canary, e.changes)
	}
	// The old revision's counts do not count for the new step.
	e.c.Tick(context.Background())
	e.want(Progressing, "canary 10%")
	e.authz[0].set(canary.Revision, Counts{Requests: 100, Same: 100, CandidateEnforced: 10})
	e.c.Tick(context.Background())
	done := e.want(Completed, "enforce")
	if st := stepOf(t, e.c.Overlay(mesh(t, gated)), "api/read"); st.Policy != "api-v2" || st.Candidate != "" {
		t.Fatalf("an enforced rollout makes the candidate the route's policy: %+v", st)
	}
	// Every transition is audited, with the counts of the step it left.
	tr := e.audit()
	if len(tr) != 3 || tr[1].From != "shadow" || tr[1].To != "canary 10%" || tr[1].By != ByController ||
		tr[1].Counts == nil || tr[1].Counts.Requests != 100 || tr[1].Counts.AllowToDeny != 1 ||
		tr[2].Counts.CandidateEnforced != 10 || tr[2].Revision != done.Revision {
		t.Fatalf("audit: %+v", tr)
	}
}

func TestAStepIsNotLeftBeforeItsMinimumDwell(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, `{candidate: api-v2, stage: shadow, percent: 10, gates: {minRequests: 10, minDwell: 10m}}`))
	rev := e.get().Revision
	e.authz[0].set(rev, Counts{Requests: 500, Same: 500})
	e.clock.advance(9*time.Minute + 59*time.Second)
	e.c.Tick(context.Background())
	if r := e.want(Progressing, "shadow"); r.Verdict.Result != VerdictWait || !strings.Contains(r.Verdict.Reason, "in stage for 9m59s of 10m0s") {
		t.Fatalf("before the dwell: %+v", r.Verdict)
	}
	e.clock.advance(time.Second)
	e.c.Tick(context.Background())
	e.want(Progressing, "canary 10%")
}

func TestAGateFailureRollsBackWithinOneTick(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, gated))
	rev := e.get().Revision
	e.authz[0].set(rev, Counts{Requests: 30, Same: 28, AllowToDeny: 2})
	e.c.Tick(context.Background())
	r := e.want(RolledBack, "shadow")
	if !strings.Contains(r.Reason, "allow→deny") || e.changes != 1 {
		t.Fatalf("rollback reason %q, changes %d", r.Reason, e.changes)
	}
	if st := stepOf(t, e.c.Overlay(mesh(t, gated)), "api/read"); st.Policy != "api" || st.Candidate != "" {
		t.Fatalf("a rolled-back route enforces its current set alone: %+v", st)
	}
	// Rolled back stays rolled back: no more judging.
	e.c.Tick(context.Background())
	e.want(RolledBack, "shadow")
}

func TestUnreadableCountsPauseNeverPromote(t *testing.T) {
	e := newEnv(t, 2)
	e.c.Sync(mesh(t, gated))
	rev := e.get().Revision
	e.authz[0].set(rev, Counts{Requests: 500, Same: 500})
	e.authz[1].setDown(true)
	e.c.Tick(context.Background())
	r := e.want(Paused, "shadow")
	if r.PausedBy != ByController || !strings.Contains(r.Reason, "gates cannot be judged") {
		t.Fatalf("paused: %+v", r)
	}
	e.authz[1].setDown(false)
	e.c.Tick(context.Background())
	r = e.want(Progressing, "shadow")
	// With counts again, the resumed step is judged on its own revision.
	e.authz[0].set(r.Revision, Counts{Requests: 100, Same: 100})
	e.c.Tick(context.Background())
	e.want(Progressing, "canary 10%")

	// A failure in the counts that could be read is certain: rolled back
	// even while another authorizer is unreachable.
	r = e.get()
	e.authz[1].setDown(true)
	e.authz[0].set(r.Revision, Counts{Requests: 5, Errors: 1})
	e.c.Tick(context.Background())
	e.want(RolledBack, "canary 10%")
}

func TestNoAuthorizersConfiguredPausesAGatedRollout(t *testing.T) {
	e := newEnv(t, 0)
	e.c.Sync(mesh(t, gated))
	e.c.Tick(context.Background())
	if r := e.want(Paused, "shadow"); !strings.Contains(r.Reason, "--authz-admin") {
		t.Fatalf("reason: %s", r.Reason)
	}
}

func TestARolloutWithoutGatesMovesByCommandOnly(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, `{candidate: api-v2, stage: shadow, steps: [10, 50]}`))
	rev := e.get().Revision
	e.authz[0].set(rev, Counts{Requests: 1000, AllowToDeny: 1000})
	e.c.Tick(context.Background())
	if r := e.want(Progressing, "shadow"); r.Verdict.Result != VerdictNone || r.Counts.AllowToDeny != 1000 {
		t.Fatalf("counts are read for status even without gates: %+v", r)
	}
	for _, c := range []struct{ verb, phase, step string }{
		{"promote", Progressing, "canary 10%"},
		{"pause", Paused, "canary 10%"},
		{"resume", Progressing, "canary 10%"},
		{"promote", Progressing, "canary 50%"},
		{"rollback", RolledBack, "canary 50%"},
		{"resume", Progressing, "shadow"}, // a rolled-back rollout restarts
		{"promote", Progressing, "canary 10%"},
		{"promote", Progressing, "canary 50%"},
		{"promote", Completed, "enforce"},
	} {
		r, err := e.c.Command(c.verb, "api/read", "alice", "")
		if err != nil {
			t.Fatalf("%s: %v", c.verb, err)
		}
		if r.Phase != c.phase || r.Step().String() != c.step {
			t.Fatalf("%s: %s at %s, want %s at %s", c.verb, r.Phase, r.Step(), c.phase, c.step)
		}
	}
	if last := e.audit(); last[len(last)-1].By != "operator:alice" {
		t.Fatalf("commands are audited with their actor: %+v", last[len(last)-1])
	}
	for verb, want := range map[string]error{"promote": ErrConflict, "pause": ErrConflict, "resume": ErrConflict} {
		if _, err := e.c.Command(verb, "api/read", "alice", ""); !errors.Is(err, want) {
			t.Errorf("%s on a completed rollout: %v, want %v", verb, err, want)
		}
	}
	if _, err := e.c.Command("promote", "api/nope", "alice", ""); !errors.Is(err, ErrNoRollout) {
		t.Errorf("unknown route: %v", err)
	}
	if _, err := e.c.Command("destroy", "api/read", "alice", ""); err == nil {
		t.Error("unknown verb accepted")
	}
}

func TestAnOperatorsPauseHoldsEvenAFailingStep(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, gated))
	if _, err := e.c.Command("pause", "api/read", "bob", "investigating"); err != nil {
		t.Fatal(err)
	}
	r := e.get()
	e.authz[0].set(r.Revision, Counts{Requests: 200, AllowToDeny: 200})
	e.c.Tick(context.Background())
	if r := e.want(Paused, "shadow"); r.Verdict.Result != VerdictFail || r.PausedBy != "operator:bob" {
		t.Fatalf("judged but not moved: %+v", r)
	}
}

func TestStateSurvivesARestart(t *testing.T) {
	e := newEnv(t, 1)
	m := mesh(t, gated)
	e.c.Sync(m)
	if _, err := e.c.Command("promote", "api/read", "alice", ""); err != nil {
		t.Fatal(err)
	}
	before := e.want(Progressing, "canary 10%")
	e.authz[0].set(before.Revision, Counts{Requests: 40, Same: 40})
	e.c.Tick(context.Background())
	e.c.Close()

	e.open()
	e.c.Sync(m) // the same mesh file: nothing moves
	after := e.want(Progressing, "canary 10%")
	if after.Revision != before.Revision || after.Counts.Requests != 40 || len(after.Transitions) != len(before.Transitions) {
		t.Fatalf("after a restart: %+v\nbefore: %+v", after, before)
	}
	// The counts read before the restart still count.
	e.authz[0].set(before.Revision, Counts{Requests: 100, Same: 100})
	e.c.Tick(context.Background())
	e.want(Completed, "enforce")
	// The audit trail goes on as one chain across the restart.
	if got := e.audit(); len(got) != len(before.Transitions)+1 {
		t.Fatalf("audit trail has %d transitions, want %d", len(got), len(before.Transitions)+1)
	}
}

func TestTheMeshFileWins(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, gated))
	first := e.get()
	// A new declared stage moves the rollout there.
	e.c.Sync(mesh(t, `{candidate: api-v2, stage: canary, percent: 25, gates: {minRequests: 100}}`))
	r := e.want(Progressing, "canary 25%")
	if r.ID != first.ID || r.Transitions[len(r.Transitions)-1].By != ByMesh {
		t.Fatalf("declared stage: %+v", r)
	}
	// A new candidate is a new rollout.
	e.c.Sync(mesh(t, `{candidate: api-v3, stage: shadow}`))
	r = e.want(Progressing, "shadow")
	if r.ID == first.ID || r.Candidate != "api-v3" {
		t.Fatalf("new candidate: %+v", r)
	}
	// No rollout in the file: forgotten.
	e.c.Sync(mesh(t, ""))
	if _, err := e.c.Get("api/read"); !errors.Is(err, ErrNoRollout) {
		t.Fatalf("removed rollout: %v", err)
	}
	tr := e.audit()
	if last := tr[len(tr)-1]; last.To != "removed" {
		t.Fatalf("audit: %+v", last)
	}
}

func TestAnAuthorizerRestartAddsItsCounts(t *testing.T) {
	e := newEnv(t, 1)
	e.c.Sync(mesh(t, gated))
	rev := e.get().Revision
	a := e.authz[0]
	a.set(rev, Counts{Requests: 60, Same: 60})
	e.c.Tick(context.Background())
	// The authorizer restarts: a new instance counting from zero.
	a.mu.Lock()
	a.instance = "i2"
	a.mu.Unlock()
	a.set(rev, Counts{Requests: 30, Same: 30})
	e.c.Tick(context.Background())
	if r := e.get(); r.Counts.Requests != 90 {
		t.Fatalf("after the restart: %d requests, want 60 + 30", r.Counts.Requests)
	}
	// The same instance forgetting the step and counting it again.
	a.set(rev, Counts{Requests: 5, Same: 5})
	e.c.Tick(context.Background())
	if r := e.get(); r.Counts.Requests != 95 {
		t.Fatalf("after the step was forgotten: %d requests, want 95", r.Counts.Requests)
	}
}

func TestADamagedStateFileIsRefused(t *testing.T) {
	for name, body := range map[string]string{
		"not JSON":        "{",
		"unknown version": `{"version": 9}`,
		"bad plan":        `{"version": 1, "rollouts": [{"route": "r", "plan": [], "index": 0}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := New(Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "state.json") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
