package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/contract"
)

// Phases of a rollout.
const (
	// Progressing: at a step, its gates (if any) judged every interval.
	Progressing = "Progressing"
	// Paused: held at its step; the controller neither promotes nor rolls
	// back. An operator pauses with a command; the controller pauses a
	// rollout whose counts it cannot read, and resumes it once it can.
	Paused = "Paused"
	// RolledBack: the route enforces its current set again; the candidate
	// is not evaluated. Resume restarts the rollout from its first step.
	RolledBack = "RolledBack"
	// Completed: the candidate is the route's set.
	Completed = "Completed"
)

// Who moved a rollout.
const (
	ByController = "controller"
	ByMesh       = "mesh"      // the mesh file declared a new rollout or stage
	byOperator   = "operator:" // + the name the command gave
)

// Step is one position of a rollout's plan: shadow, a canary share, or enforce.
type Step struct {
	Stage  string `json:"stage"`
	Canary int    `json:"canary_bp,omitempty"` // basis points, at canary
}

func (s Step) String() string {
	if s.Stage == contract.StageCanary {
		return "canary " + contract.FormatPercent(s.Canary) + "%"
	}
	return s.Stage
}

// Plan is the steps a rollout walks through: shadow, each canary share,
// enforce.
func Plan(ro *model.Rollout) []Step {
	out := []Step{{Stage: contract.StageShadow}}
	for _, bp := range ro.CanarySteps() {
		out = append(out, Step{Stage: contract.StageCanary, Canary: bp})
	}
	return append(out, Step{Stage: contract.StageEnforce})
}

// declaredIndex is where the declared stage sits in the plan.
func declaredIndex(ro *model.Rollout, plan []Step) int {
	switch ro.Stage {
	case contract.StageShadow:
		return 0
	case contract.StageCanary:
		return 1 // validation requires a share at canary
	}
	return len(plan) - 1
}

// declaration is what the mesh file says of a rollout's position: when it
// changes, the file wins (an operator edited it).
func declaration(ro *model.Rollout) string {
	steps := make([]string, 0, len(ro.Steps))
	for _, s := range ro.Steps {
		steps = append(steps, string(s))
	}
	return fmt.Sprintf("%s/%s/%s", ro.Stage, ro.Percent, strings.Join(steps, ","))
}

// Rollout is the state of one route's rollout: what the controller
// persists, serves on /v1/rollouts and prints in `meshguard rollout status`.
type Rollout struct {
	Route     string `json:"route"`
	Service   string `json:"service"`
	Current   string `json:"current"`
	Candidate string `json:"candidate"`
	// Plan and Index: the steps and the one in force.
	Plan  []Step `json:"plan"`
	Index int    `json:"index"`
	Phase string `json:"phase"`
	// PausedBy is ByController (counts unavailable) or the operator.
	PausedBy string `json:"paused_by,omitempty"`
	// Reason is why the rollout is where it is (its last transition).
	Reason string `json:"reason,omitempty"`
	// Revision is the step's id (meshguard.rollout): counts are per revision.
	Revision string    `json:"revision"`
	Since    time.Time `json:"since"`
	// Counts and Verdict of the current revision, as last read and judged.
	Counts  Counts  `json:"counts"`
	Verdict Verdict `json:"verdict"`
	// Gates come from the mesh file, every Sync.
	Gates *model.Gates `json:"gates,omitempty"`
	// Declared is the mesh file's stage, percent and steps when last synced.
	Declared string `json:"declared"`
	// Transitions are the latest (at most maxHistory); the audit file has all.
	Transitions []Transition `json:"transitions,omitempty"`

	// ID is random per rollout and Seq counts its steps: revisions are
	// "<ID>.<Seq>", unique even across a lost state file.
	ID  string `json:"id"`
	Seq int    `json:"seq"`
}

// maxHistory bounds the transitions kept in the state.
const maxHistory = 20

// Step is the step in force.
func (r *Rollout) Step() Step { return r.Plan[r.Index] }

// Transition is one move of a rollout, with the evidence for it.
type Transition struct {
	Time  time.Time `json:"time"`
	Route string    `json:"route"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Phase string    `json:"phase"`
	// By is ByController, ByMesh or "operator:<name>".
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Counts of the step being left, when it was compared.
	Counts   *Counts `json:"counts,omitempty"`
	Revision string  `json:"revision"`
}

// position names where a rollout stands, for transitions.
func (r *Rollout) position() string {
	switch r.Phase {
	case RolledBack:
		return "rolled back"
	case Paused:
		return r.Step().String() + " (paused)"
	}
	return r.Step().String()
}

// ModelStep is the route's settings at the rollout's position, for the
// translator.
func (r *Rollout) ModelStep() *model.RolloutStep {
	switch {
	case r.Phase == RolledBack:
		return &model.RolloutStep{Policy: r.Current, Revision: r.Revision}
	case r.Step().Stage == contract.StageEnforce:
		return &model.RolloutStep{Policy: r.Candidate, Stage: contract.StageEnforce, Revision: r.Revision}
	}
	st := r.Step()
	return &model.RolloutStep{Policy: r.Current, Candidate: r.Candidate, Stage: st.Stage, Canary: st.Canary, Revision: r.Revision}
}

// compared reports whether requests at the position evaluate both sets.
func (r *Rollout) compared() bool {
	return r.Phase != RolledBack && r.Step().Stage != contract.StageEnforce
}
