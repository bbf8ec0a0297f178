package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
)

func TestJudge(t *testing.T) {
	gates := &model.Gates{MinRequests: 1000, MaxAllowToDeny: "1", MaxDenyToAllow: "0.5", MaxErrors: 2, MinDwell: model.Duration{Duration: time.Minute}}
	for _, c := range []struct {
		name   string
		gates  *model.Gates
		counts Counts
		dwell  time.Duration
		want   string
		reason string
	}{
		{"no gates: moved by command only", nil, Counts{Requests: 5, AllowToDeny: 5}, time.Hour, VerdictNone, ""},
		{"too few requests", gates, Counts{Requests: 999}, time.Hour, VerdictWait, "999 of 1000 requests seen"},
		{"too little time", gates, Counts{Requests: 5000}, 30 * time.Second, VerdictWait, "in stage for 30s of 1m0s"},
		{"every gate holds", gates, Counts{Requests: 1000, AllowToDeny: 10, DenyToAllow: 5, Errors: 2}, time.Minute, VerdictPass, "1000 requests"},
		{"errors over the limit", gates, Counts{Requests: 3, Errors: 3}, 0, VerdictFail, "3 of 3 requests failed to evaluate"},
		{"allow→deny over the share", gates, Counts{Requests: 2000, AllowToDeny: 21}, time.Hour, VerdictFail, "21 of 2000 requests changed allow→deny (1.05% > 1%)"},
		{"deny→allow over the share", gates, Counts{Requests: 2000, DenyToAllow: 11}, time.Hour, VerdictFail, "deny→allow (0.55% > 0.5%)"},
		// 11 flips already exceed 1 % of the 1,000 requests still to be
		// reached: failed before minRequests.
		{"a certain failure does not wait", gates, Counts{Requests: 20, AllowToDeny: 11}, 0, VerdictFail, "11 of 20 requests changed allow→deny"},
		{"an uncertain one does", gates, Counts{Requests: 20, AllowToDeny: 10}, 0, VerdictWait, ""},
		{"an unset share is not gated", &model.Gates{MinRequests: 1}, Counts{Requests: 10, AllowToDeny: 10, DenyToAllow: 10}, 0, VerdictPass, ""},
		{"a zero share refuses any change", &model.Gates{MaxAllowToDeny: "0"}, Counts{Requests: 1000, AllowToDeny: 1}, 0, VerdictFail, "1 of 1000"},
		{"no errors allowed by default", &model.Gates{}, Counts{Requests: 1000, Errors: 1}, 0, VerdictFail, "failed to evaluate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.gates, c.counts, c.dwell)
			if v.Result != c.want || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("Judge = %+v, want %s with %q", v, c.want, c.reason)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	got := Plan(&model.Rollout{Steps: []model.Percent{"5", "50"}})
	names := []string{}
	for _, s := range got {
		names = append(names, s.String())
	}
	if strings.Join(names, ",") != "shadow,canary 5%,canary 50%,enforce" {
		t.Fatalf("plan: %v", names)
	}
	if got := Plan(&model.Rollout{}); len(got) != 2 {
		t.Fatalf("a rollout without canary shares goes shadow → enforce: %v", got)
	}
}
