package model

import (
	"strings"
	"testing"

	"github.com/meshguard/meshguard/internal/contract"
)

// withRollout gives the api route of the minimal mesh a rollout block.
func withRollout(block string) string {
	return strings.Replace(minimal, "        - match: {prefix: /, methods: [get]}\n",
		"        - match: {prefix: /, methods: [get]}\n          rollout:\n"+block, 1)
}

func TestRolloutIsParsed(t *testing.T) {
	m, err := Parse([]byte(withRollout(`            candidate: api-v2
            stage: canary
            steps: [5, 25.5, "50%"]
            gates: {minRequests: 100, maxAllowToDeny: 0.5, maxDenyToAllow: "1%", maxErrors: 0, minDwell: 1m}
`)), nil)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := m.Service("api")
	r := &api.Routes[0]
	ro := r.Rollout
	if ro.Candidate != "api-v2" || ro.Gates.MinRequests != 100 || ro.Gates.MinDwell.String() != "1m0s" {
		t.Fatalf("rollout: %+v", ro)
	}
	if got := ro.CanarySteps(); len(got) != 3 || got[0] != 500 || got[1] != 2550 || got[2] != 5000 {
		t.Fatalf("steps: %v", got)
	}
	if bp, _ := ro.Gates.MaxDenyToAllow.BasisPoints(); bp != 100 {
		t.Fatalf("maxDenyToAllow: %d", bp)
	}
	st := r.EffectiveStep()
	if st.Policy != "api" || st.Candidate != "api-v2" || st.Stage != contract.StageCanary || st.Canary != 500 {
		t.Fatalf("declared step: %+v", st)
	}
}

func TestDeclaredStages(t *testing.T) {
	for stage, want := range map[string]RolloutStep{
		"shadow":  {Policy: "api", Candidate: "api-v2", Stage: "shadow"},
		"canary":  {Policy: "api", Candidate: "api-v2", Stage: "canary", Canary: 1000},
		"enforce": {Policy: "api-v2", Stage: "enforce"},
	} {
		m, err := Parse([]byte(withRollout("            {candidate: api-v2, stage: "+stage+", percent: 10}\n")), nil)
		if err != nil {
			t.Fatal(err)
		}
		api, _ := m.Service("api")
		if got := api.Routes[0].EffectiveStep(); *got != want {
			t.Errorf("stage %s: %+v, want %+v", stage, *got, want)
		}
	}
}

func TestBadRolloutsNameTheField(t *testing.T) {
	for name, c := range map[string]struct{ block, want string }{
		"no candidate":         {"            {stage: shadow}\n", "spec.services[1].routes[0].rollout.candidate: required"},
		"unknown candidate":    {"            {candidate: nope, stage: shadow}\n", `rollout.candidate: policy set "nope" does not exist`},
		"candidate = policy":   {"            {candidate: api, stage: shadow}\n", `rollout.candidate: "api" is already the route's policy`},
		"bad stage":            {"            {candidate: api-v2, stage: live}\n", `rollout.stage: "live": want shadow, canary or enforce`},
		"share over 100":       {"            {candidate: api-v2, stage: canary, percent: 120}\n", `line 17: spec.services[1].routes[0].rollout.percent: "120"`},
		"negative share":       {"            {candidate: api-v2, stage: canary, percent: -1}\n", `rollout.percent: "-1"`},
		"three decimals":       {"            {candidate: api-v2, stage: canary, percent: 0.125}\n", `rollout.percent: "0.125"`},
		"canary without share": {"            {candidate: api-v2, stage: canary}\n", "rollout.percent: required at stage canary"},
		"percent and steps":    {"            {candidate: api-v2, stage: canary, percent: 5, steps: [10]}\n", "set percent or steps, not both"},
		"steps shrink":         {"            {candidate: api-v2, stage: canary, steps: [50, 10]}\n", "rollout.steps[1]: 10: canary steps must grow"},
		"bad gate share":       {"            {candidate: api-v2, stage: shadow, gates: {maxAllowToDeny: 101}}\n", `rollout.gates.maxAllowToDeny: "101"`},
		"negative dwell":       {"            {candidate: api-v2, stage: shadow, gates: {minDwell: -1s}}\n", "rollout.gates.minDwell: must not be negative"},
		"unknown gate":         {"            {candidate: api-v2, stage: shadow, gates: {maxFlips: 1}}\n", "field maxFlips not found"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(withRollout(c.block)), func(s string) bool { return s == "api" || s == "api-v2" || s == "web" })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant mention of %q", err, c.want)
			}
		})
	}
}

func TestRolloutRefusedWithShadowOrOnPublicRoutes(t *testing.T) {
	for name, extra := range map[string]string{
		"public": "          public: true\n",
		"shadow": "          shadow: api-v2\n",
	} {
		doc := withRollout("            {candidate: api-v2, stage: shadow}\n" + extra)
		if _, err := Parse([]byte(doc), nil); err == nil || !strings.Contains(err.Error(), "spec.services[1].routes[0].rollout:") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
