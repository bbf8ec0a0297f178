package rollout

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meshguard/meshguard/controlplane/model"
)

// memState is a StateStore shared by replicas, as a ConfigMap is; deliver
// hands its state to followers, as their watch of it does.
type memState struct {
	mu   sync.Mutex
	data []byte
}

func (m *memState) String() string { return "memory" }

func (m *memState) Load(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data, nil
}

func (m *memState) Save(_ context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = data
	return nil
}

func (m *memState) deliver(t *testing.T, to ...*Controller) {
	t.Helper()
	data, _ := m.Load(context.Background())
	for _, c := range to {
		if err := c.Replace(data); err != nil {
			t.Fatal(err)
		}
	}
}

// Of two replicas, the leader moves the rollouts and the follower serves
// the leader's steps with the leader's revisions, so the authorizers count
// every proxy's requests under one revision; a new leader continues from
// there.
func TestReplicasServeTheLeadersRollouts(t *testing.T) {
	st := &memState{}
	var aLeads atomic.Bool
	aLeads.Store(true)
	a, err := New(Config{Dir: t.TempDir(), State: st, Active: aLeads.Load})
	if err != nil {
		t.Fatal(err)
	}
	bDir := t.TempDir()
	b, err := New(Config{Dir: bDir, State: st, Active: func() bool { return !aLeads.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()

	m := mesh(t, gated)
	b.Sync(m) // the follower sees the mesh first: it serves the declared stage
	if s := stepOf(t, b.Overlay(m), "api/read"); s != nil && s.Revision != "" {
		t.Fatalf("a follower started its own rollout: %+v", s)
	}
	a.Sync(m)
	st.deliver(t, b)
	want := stepOf(t, a.Overlay(m), "api/read")
	if got := stepOf(t, b.Overlay(m), "api/read"); got == nil || *got != *want {
		t.Fatalf("follower serves %+v, the leader %+v", got, want)
	}

	if _, err := b.Command("promote", "api/read", "ops", ""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a command on the follower: %v, want ErrNotLeader", err)
	}
	if _, err := a.Command("promote", "api/read", "ops", ""); err != nil {
		t.Fatal(err)
	}
	st.deliver(t, b)
	want = stepOf(t, a.Overlay(m), "api/read")
	if got := stepOf(t, b.Overlay(m), "api/read"); *got != *want || got.Stage != "canary" {
		t.Fatalf("after a promotion the follower serves %+v, the leader %+v", got, want)
	}
	if data, _ := os.ReadFile(AuditPath(bDir)); len(data) != 0 {
		t.Fatalf("the follower audited moves the leader made:\n%s", data)
	}

	// A new candidate the leader has not synced yet: the follower's mesh
	// has it, the state does not. The follower serves the declared stage
	// of the new rollout, not the old candidate.
	m3 := mesh(t, strings.Replace(gated, "api-v2", "api-v3", 1))
	b.Sync(m3)
	var declared *model.RolloutStep
	for _, r := range b.Overlay(m3).Spec.Services[0].Routes {
		if r.ID == "api/read" {
			declared = r.EffectiveStep()
		}
	}
	if s := stepOf(t, b.Overlay(m3), "api/read"); s != nil || declared.Candidate != "api-v3" {
		t.Fatalf("the follower serves %+v for a rollout of api-v3", s)
	}

	// The leader dies before syncing it; b takes over from what it
	// followed, syncs its mesh and publishes the state.
	aLeads.Store(false)
	b.takeOver()
	st.deliver(t, a)
	got, err := b.Get("api/read")
	if err != nil || got.Candidate != "api-v3" {
		t.Fatalf("the new leader's rollout: %+v %v", got, err)
	}
	a.Sync(m3)
	if sa, sb := stepOf(t, a.Overlay(m3), "api/read"), stepOf(t, b.Overlay(m3), "api/read"); *sa != *sb || sb.Revision == "" {
		t.Fatalf("the old leader serves %+v, the new one %+v", sa, sb)
	}
	if data, _ := os.ReadFile(AuditPath(bDir)); !strings.Contains(string(data), "api-v3") {
		t.Fatalf("the new leader did not audit its move:\n%s", data)
	}
}

// A state the leader saved that does not parse changes nothing a follower
// serves.
func TestAFollowerRefusesADamagedState(t *testing.T) {
	b, err := New(Config{Dir: t.TempDir(), State: &memState{}, Active: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, bad := range []string{"{", `{"version": 2}`, `{"version": 1, "rollouts": [{"route": "x", "plan": [], "index": 0}]}`} {
		if err := b.Replace([]byte(bad)); err == nil || !strings.Contains(err.Error(), "rollout state memory") {
			t.Errorf("Replace(%s): %v, want an error naming the store", bad, err)
		}
	}
}
